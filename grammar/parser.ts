// The Weft grammar as a chevrotain CstParser with error recovery. `build.ts` turns the
// (possibly partial) CST into the AST.
//
// Line breaks are not tokens; the grammar reads them from `lex` in two places only.
// 1. Separation: statements, block members and train/record fields are separated by a
//    line break or `;` (fields also `,`). `return x + g  k1` is an error rather than two
//    statements. Where one ends is still decided by the grammar: `let`, `name =`, `}` ...
//    cannot continue an expression.
// 2. Continuation: a token that could both continue an expression and start a new one does
//    NOT continue it when it starts a line at brace level (outside `(` and `[`), as in
//    Kotlin and Swift. Those tokens are `(`, `[` and `-`:
//        let a = b          let a = b           let a = b
//        (c)  // new stmt   [1, 2]  // new      - c  // new stmt `-c`
//    To continue over lines, end the line with the operator or wrap the expression in
//    `( )`. Other continuations (`+ y`, `* y`, `.x`, `from "..."`) cannot start an
//    expression, so they continue the previous line.
// In expression position `{ name = ...` and `{}` are records; any other `{` is a block.
import { CstParser, EOF, tokenMatcher, type CstNode, type IOrAlt, type IParserErrorMessageProvider, type IToken, type TokenType } from "chevrotain";
import * as T from "./lexer.ts";

const itemPhrase = "an item (import, dim, block, fn or train)";

/** What the parser expected, phrased for a person; `rule/Token` keys refine the default label. */
const expectedIn: Record<string, string> = {
  "program/EOF": itemPhrase,
  "callSuffix/RParen": "')' to close the argument list",
  "paramList/LParen": "'(' to start the parameter list",
  "paramList/RParen": "')' to close the parameter list",
  "blockDims/RParen": "')' to close the dim list",
  "blockDims/Identifier": "a dim name",
  "blockItem/LBrace": "'{' to start the block body",
  "blockItem/RBrace": "a member (param, fn or name = value) or '}' to close the block",
  "blockStmt/RBrace": "a statement or '}'",
  "blockStmt/LBrace": "'{'",
  "trainItem/LBrace": "'{' to start the training job",
  "trainItem/RBrace": "a field (name = value) or '}' to close the training job",
  "recordExpr/RBrace": "a field (name = value) or '}' to close the record",
  "parenExpr/RParen": "')' to close the parenthesis",
  "listExpr/RBracket": "']' to close the list",
  "indexSuffix/RBracket": "']' to close the index",
  "dims/RBracket": "']' to close the dims",
  "tupleType/RParen": "')' to close the tuple type",
  "tuplePattern/RParen": "')' to close the pattern",
  "repeatExpr/LParen": "'(' and a count after 'repeat' (repeat(L) Layer(D))",
  "repeatExpr/RParen": "')' after the repeat count",
  "importItem/StringLit": "a path string after 'import' (import \"std/nn\")",
  "importItem/Identifier": "an alias name after 'as'",
  "dimDecl/Identifier": "a dim name",
  "blockItem/Identifier": "a block name",
  "trainItem/Identifier": "a training job name",
  "paramDecl/Identifier": "a parameter name",
  "paramDecl/Colon": "':' and a type after the parameter name (param w: f32[D])",
  "param/Identifier": "a parameter name",
  "forStmt/Identifier": "a loop variable name",
  "forStmt/In": "'in' after the loop variable",
  "forStmt/DotDot": "'..' in the loop range (for i in 0..N)",
  "memberSuffix/Identifier": "a field name after '.'",
  "typeRef/Identifier": "a type name",
  "bindStmt/Equals": "'=' and a value",
  "fromSuffix/StringLit": "a checkpoint path string after 'from'",
};

const ruleNoun: Record<string, string> = {
  item: itemPhrase,
  member: "a block member (param, fn or name = value)",
  stmt: "a statement",
  primary: "an expression",
  unaryExpr: "an expression",
  typeExpr: "a type (f32[...], a block name or a tuple of types)",
  dim: "a dim (a name, a number, '..', '_' or an expression)",
  pattern: "a name or a tuple pattern (a, b)",
  indexItem: "an index or a slice",
};

function label(t: TokenType): string {
  return t === EOF ? "the end of the file" : (t.LABEL ?? t.name);
}

const messages: IParserErrorMessageProvider = {
  buildMismatchTokenMessage: ({ expected, ruleName }) => expectedIn[`${ruleName}/${expected.name}`] ?? label(expected),
  buildNotAllInputParsedMessage: () => itemPhrase,
  buildNoViableAltMessage: ({ expectedPathsPerAlt, customUserDescription, ruleName }) =>
    customUserDescription ?? ruleNoun[ruleName] ?? firstTokens(expectedPathsPerAlt.flat()),
  buildEarlyExitMessage: ({ expectedIterationPaths, customUserDescription, ruleName }) =>
    customUserDescription ?? ruleNoun[ruleName] ?? firstTokens(expectedIterationPaths),
};

function firstTokens(paths: TokenType[][]): string {
  const names = [...new Set(paths.filter((p) => p.length > 0).map((p) => label(p[0])))];
  return names.length <= 1 ? (names[0] ?? "something else") : `${names.slice(0, -1).join(", ")} or ${names[names.length - 1]}`;
}

export class WeftParser extends CstParser {
  /** Set by `parse` for each input, from `lex` (rules 2 and 1 at the top of this file). */
  lineStarts: Set<IToken> = new Set();
  firstOnLine: Set<IToken> = new Set();
  /** OR alternatives, built once: a fresh array of closures per call is most of the parse's garbage. */
  private readonly alts: Record<string, IOrAlt<unknown>[]> = {};

  constructor() {
    super(T.allTokens, { recoveryEnabled: true, maxLookahead: 3, errorMessageProvider: messages, nodeLocationTracking: "onlyOffset" });
    this.performSelfAnalysis();
  }

  private startsLine(t: IToken): boolean {
    return this.lineStarts.has(t);
  }

  /**
   * Statements, members and fields are separated by a line break or `;` (fields also `,`):
   * `return x + g  k1` is an error, not `return x + g` followed by `k1`.
   */
  private separated(): boolean {
    const next = this.LA(1);
    const prev = this.LA(0);
    const sep = (t: IToken) => tokenMatcher(t, T.Semicolon) || tokenMatcher(t, T.Comma);
    // Any line break counts here, even inside an unclosed `(`: recovery must find the next statement.
    return sep(next) || sep(prev) || tokenMatcher(prev, T.LBrace) || this.firstOnLine.has(next);
  }

  /**
   * In member and field lists a name must be followed by `=`. Checking both tokens keeps
   * recovery from resuming at a stray name (`loss = f(x) \n (y)` must not parse `y` as a field).
   */
  private nextDeclaration(): boolean {
    return this.separated() && (!tokenMatcher(this.LA(1), T.Identifier) || tokenMatcher(this.LA(2), T.Equals));
  }

  /** `{` can start an expression, so inserting a missing `..` before one misparses the loop body. */
  protected override canTokenTypeBeInsertedInRecovery(tokType: TokenType): boolean {
    return tokType !== T.DotDot;
  }

  // ------------------------------------------------------------ items

  program = this.RULE("program", () => {
    this.MANY(() => this.SUBRULE(this.item));
  });

  item = this.RULE("item", () => {
    this.OR((this.alts.item ??= [
      { ALT: () => this.SUBRULE(this.importItem) },
      { ALT: () => this.SUBRULE(this.dimItem) },
      { ALT: () => this.SUBRULE(this.blockItem) },
      { ALT: () => this.SUBRULE(this.fnItem) },
      { ALT: () => this.SUBRULE(this.trainItem) },
    ]));
  });

  importItem = this.RULE("importItem", () => {
    this.CONSUME(T.Import);
    this.CONSUME(T.StringLit);
    this.OPTION(() => {
      this.CONSUME(T.As);
      this.CONSUME(T.Identifier);
    });
  });

  dimItem = this.RULE("dimItem", () => {
    this.CONSUME(T.Dim);
    this.SUBRULE(this.dimDecl);
    this.MANY(() => {
      this.CONSUME(T.Comma);
      this.SUBRULE2(this.dimDecl);
    });
  });

  dimDecl = this.RULE("dimDecl", () => {
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.Equals);
      this.SUBRULE(this.expr);
    });
  });

  blockItem = this.RULE("blockItem", () => {
    this.CONSUME(T.Block);
    this.CONSUME(T.Identifier);
    this.OPTION(() => this.SUBRULE(this.blockDims));
    this.CONSUME(T.LBrace);
    this.MANY2({
      GATE: () => this.nextDeclaration(),
      DEF: () => this.OR((this.alts.blockItem ??= [{ ALT: () => this.SUBRULE(this.member) }, { ALT: () => this.CONSUME(T.Semicolon) }])),
    });
    this.CONSUME(T.RBrace);
  });

  // Only what may stand here starts a member (or an item, or a statement): recovery resumes
  // at those tokens, so a stray `let` or `param` is skipped and reported (W0003) rather than
  // parsed in the wrong place, which would cascade when a `{` or `}` is missing.
  /** `(D, F)`; a rule of its own so that an error inside resumes at the `{` after it. */
  blockDims = this.RULE("blockDims", () => {
    this.CONSUME(T.LParen);
    this.OPTION(() => {
      this.CONSUME(T.Identifier);
      this.MANY(() => {
        this.CONSUME(T.Comma);
        this.CONSUME2(T.Identifier);
      });
    });
    this.CONSUME(T.RParen);
  });

  member = this.RULE("member", () => {
    this.OR((this.alts.member ??= [
      { ALT: () => this.SUBRULE(this.paramDecl) },
      { ALT: () => this.SUBRULE(this.fnItem) },
      { ALT: () => this.SUBRULE(this.instanceDecl) },
    ]));
  });

  paramDecl = this.RULE("paramDecl", () => {
    this.CONSUME(T.Param);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Colon);
    this.SUBRULE(this.typeExpr);
    this.OPTION(() => {
      this.CONSUME(T.Equals);
      this.SUBRULE(this.expr);
    });
  });

  instanceDecl = this.RULE("instanceDecl", () => {
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  fnItem = this.RULE("fnItem", () => {
    this.CONSUME(T.Fn);
    this.OPTION(() => this.CONSUME(T.Identifier));
    this.SUBRULE(this.paramList);
    this.OPTION2(() => {
      this.CONSUME(T.Arrow);
      this.SUBRULE(this.typeExpr);
    });
    // No body: a signature (`fn grad_match(g: f32[N, P], K = 16) -> i32[K]`).
    this.OPTION3(() =>
      this.OR((this.alts.fnItem ??= [
        {
          ALT: () => {
            this.CONSUME(T.Equals);
            this.SUBRULE(this.expr);
          },
        },
        { ALT: () => this.SUBRULE(this.blockStmt) },
      ])),
    );
  });

  /** A rule of its own so that an error inside resumes at the `->`, `=` or `{` after it. */
  paramList = this.RULE("paramList", () => {
    this.CONSUME(T.LParen);
    this.OPTION(() => {
      this.SUBRULE(this.param);
      this.MANY(() => {
        this.CONSUME(T.Comma);
        this.SUBRULE2(this.param);
      });
    });
    this.CONSUME(T.RParen);
  });

  param = this.RULE("param", () => {
    this.CONSUME(T.Identifier);
    this.OPTION(() => {
      this.CONSUME(T.Colon);
      this.SUBRULE(this.typeExpr);
    });
    this.OPTION2(() => {
      this.CONSUME(T.Equals);
      this.SUBRULE(this.expr);
    });
  });

  trainItem = this.RULE("trainItem", () => {
    this.CONSUME(T.Train);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.LBrace);
    this.SUBRULE(this.fields);
    this.CONSUME(T.RBrace);
  });

  /** `name = expr` fields separated by newlines, `,` or `;` (train jobs and records). */
  fields = this.RULE("fields", () => {
    this.MANY({
      GATE: () => this.nextDeclaration(),
      DEF: () =>
        this.OR((this.alts.fields ??= [
          { ALT: () => this.SUBRULE(this.field) },
          { ALT: () => this.CONSUME(T.Comma) },
          { ALT: () => this.CONSUME(T.Semicolon) },
        ])),
    });
  });

  field = this.RULE("field", () => {
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  // ------------------------------------------------------------ types

  typeExpr = this.RULE("typeExpr", () => {
    this.OR((this.alts.typeExpr ??= [{ ALT: () => this.SUBRULE(this.tupleType) }, { ALT: () => this.SUBRULE(this.typeRef) }]));
  });

  tupleType = this.RULE("tupleType", () => {
    this.CONSUME(T.LParen);
    this.SUBRULE(this.typeExpr);
    this.MANY(() => {
      this.CONSUME(T.Comma);
      this.SUBRULE2(this.typeExpr);
    });
    this.CONSUME(T.RParen);
  });

  /** `f32`, `f32[B, D]`, `Linear`, `L.Linear`, `repeat Layer` — build.ts tells tensor from block type. */
  typeRef = this.RULE("typeRef", () => {
    this.OPTION(() => this.CONSUME(T.Repeat));
    this.CONSUME(T.Identifier);
    this.OPTION2(() => {
      this.CONSUME(T.Dot);
      this.CONSUME2(T.Identifier);
    });
    this.OPTION3(() => this.SUBRULE(this.dims));
  });

  dims = this.RULE("dims", () => {
    this.CONSUME(T.LBracket);
    this.SUBRULE(this.dim);
    this.MANY(() => {
      this.CONSUME(T.Comma);
      this.SUBRULE2(this.dim);
    });
    this.CONSUME(T.RBracket);
  });

  dim = this.RULE("dim", () => {
    this.OR((this.alts.dim ??= [{ ALT: () => this.CONSUME(T.DotDot) }, { ALT: () => this.SUBRULE(this.expr) }]));
  });

  // ------------------------------------------------------------ statements

  blockStmt = this.RULE("blockStmt", () => {
    this.CONSUME(T.LBrace);
    this.MANY({
      GATE: () => this.separated(),
      DEF: () => this.OR((this.alts.blockStmt ??= [{ ALT: () => this.SUBRULE(this.stmt) }, { ALT: () => this.CONSUME(T.Semicolon) }])),
    });
    this.CONSUME(T.RBrace);
  });

  stmt = this.RULE("stmt", () => {
    this.OR((this.alts.stmt ??= [
      { ALT: () => this.SUBRULE(this.bindStmt) },
      { ALT: () => this.SUBRULE(this.forStmt) },
      { ALT: () => this.SUBRULE(this.returnStmt) },
      { ALT: () => this.SUBRULE(this.assignStmt) },
      { ALT: () => this.SUBRULE(this.exprStmt) },
    ]));
  });

  /** `let` / `var` */
  bindStmt = this.RULE("bindStmt", () => {
    this.OR((this.alts.bindStmt ??= [{ ALT: () => this.CONSUME(T.Let) }, { ALT: () => this.CONSUME(T.Var) }]));
    this.SUBRULE(this.pattern);
    this.OPTION(() => {
      this.CONSUME(T.Colon);
      this.SUBRULE(this.typeExpr);
    });
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  pattern = this.RULE("pattern", () => {
    this.OR((this.alts.pattern ??= [{ ALT: () => this.CONSUME(T.Identifier) }, { ALT: () => this.SUBRULE(this.tuplePattern) }]));
  });

  tuplePattern = this.RULE("tuplePattern", () => {
    this.CONSUME(T.LParen);
    this.SUBRULE(this.pattern);
    this.MANY(() => {
      this.CONSUME(T.Comma);
      this.SUBRULE2(this.pattern);
    });
    this.CONSUME(T.RParen);
  });

  forStmt = this.RULE("forStmt", () => {
    this.CONSUME(T.For);
    this.CONSUME(T.Identifier);
    this.CONSUME(T.In);
    this.SUBRULE(this.expr, { LABEL: "start" });
    this.CONSUME(T.DotDot);
    this.SUBRULE2(this.expr, { LABEL: "end" });
    this.SUBRULE(this.blockStmt);
  });

  returnStmt = this.RULE("returnStmt", () => {
    this.CONSUME(T.Return);
    this.SUBRULE(this.expr);
  });

  assignStmt = this.RULE("assignStmt", () => {
    this.CONSUME(T.Identifier);
    this.CONSUME(T.Equals);
    this.SUBRULE(this.expr);
  });

  exprStmt = this.RULE("exprStmt", () => {
    this.SUBRULE(this.expr);
  });

  // ------------------------------------------------------------ expressions, loosest first

  expr = this.RULE("expr", () => {
    this.SUBRULE(this.binaryExpr);
    this.OPTION({
      // `from` is an ordinary name unless a string follows it.
      GATE: () => tokenMatcher(this.LA(1), T.From) && tokenMatcher(this.LA(2), T.StringLit),
      DEF: () => this.SUBRULE(this.fromSuffix),
    });
  });

  fromSuffix = this.RULE("fromSuffix", () => {
    this.CONSUME(T.From);
    this.CONSUME(T.StringLit);
  });

  /** `a op b op c ...` for every binary operator but `**`; precedence is applied in build.ts. */
  binaryExpr = this.RULE("binaryExpr", () => {
    this.SUBRULE(this.unaryExpr);
    this.MANY({
      GATE: () => !(tokenMatcher(this.LA(1), T.Minus) && this.startsLine(this.LA(1))),
      DEF: () => {
        this.CONSUME(T.BinOp);
        this.SUBRULE2(this.unaryExpr);
      },
    });
  });

  unaryExpr = this.RULE("unaryExpr", () => {
    this.OR((this.alts.unaryExpr ??= [
      {
        ALT: () => {
          this.CONSUME(T.UnaryOp);
          this.SUBRULE(this.unaryExpr);
        },
      },
      { ALT: () => this.SUBRULE(this.powExpr) },
    ]));
  });

  /** Right-associative, and the exponent may be negated: `2 ** -x`; `-x ** 2` is `-(x ** 2)`. */
  powExpr = this.RULE("powExpr", () => {
    this.SUBRULE(this.postfixExpr);
    this.OPTION(() => {
      this.CONSUME(T.Pow);
      this.SUBRULE(this.unaryExpr);
    });
  });

  postfixExpr = this.RULE("postfixExpr", () => {
    this.SUBRULE(this.primary);
    this.MANY({
      GATE: () => !(this.startsLine(this.LA(1)) && (tokenMatcher(this.LA(1), T.LParen) || tokenMatcher(this.LA(1), T.LBracket))),
      DEF: () => this.SUBRULE(this.suffix),
    });
  });

  suffix = this.RULE("suffix", () => {
    this.OR((this.alts.suffix ??= [
      { ALT: () => this.SUBRULE(this.callSuffix) },
      { ALT: () => this.SUBRULE(this.memberSuffix) },
      { ALT: () => this.SUBRULE(this.indexSuffix) },
    ]));
  });

  callSuffix = this.RULE("callSuffix", () => {
    this.CONSUME(T.LParen);
    this.OPTION(() => {
      this.SUBRULE(this.arg);
      this.MANY(() => {
        this.CONSUME(T.Comma);
        this.SUBRULE2(this.arg);
      });
    });
    this.CONSUME(T.RParen);
  });

  arg = this.RULE("arg", () => {
    this.OPTION({
      GATE: () => tokenMatcher(this.LA(2), T.Equals),
      DEF: () => {
        this.CONSUME(T.Identifier, { LABEL: "name" });
        this.CONSUME(T.Equals);
      },
    });
    this.SUBRULE(this.expr);
  });

  memberSuffix = this.RULE("memberSuffix", () => {
    this.CONSUME(T.Dot);
    this.CONSUME(T.Identifier);
  });

  indexSuffix = this.RULE("indexSuffix", () => {
    this.CONSUME(T.LBracket);
    this.SUBRULE(this.indexItem);
    this.MANY(() => {
      this.CONSUME(T.Comma);
      this.SUBRULE2(this.indexItem);
    });
    this.CONSUME(T.RBracket);
  });

  /** `e`, `a:b:c` with each part optional, `..` (the axes not indexed); `None` here is an ordinary expression. */
  indexItem = this.RULE("indexItem", () => {
    this.OR((this.alts.indexItem ??= [
      { ALT: () => this.CONSUME(T.DotDot) },
      {
        ALT: () => {
          this.CONSUME(T.Colon);
          this.SUBRULE(this.sliceRest);
        },
      },
      {
        ALT: () => {
          this.SUBRULE(this.expr, { LABEL: "start" });
          this.OPTION(() => {
            this.CONSUME2(T.Colon);
            this.SUBRULE2(this.sliceRest);
          });
        },
      },
    ]));
  });

  /** what follows the first `:` of a slice */
  sliceRest = this.RULE("sliceRest", () => {
    this.OPTION(() => this.SUBRULE(this.expr, { LABEL: "end" }));
    this.OPTION2(() => {
      this.CONSUME(T.Colon);
      this.OPTION3(() => this.SUBRULE2(this.expr, { LABEL: "step" }));
    });
  });

  primary = this.RULE("primary", () => {
    this.OR((this.alts.primary ??= [
      { ALT: () => this.CONSUME(T.NumberLit) },
      { ALT: () => this.CONSUME(T.StringLit) },
      { ALT: () => this.CONSUME(T.True) },
      { ALT: () => this.CONSUME(T.False) },
      { ALT: () => this.CONSUME(T.None) },
      { ALT: () => this.CONSUME(T.Identifier) },
      { ALT: () => this.SUBRULE(this.parenExpr) },
      { ALT: () => this.SUBRULE(this.listExpr) },
      // `{ name = ...` or `{}` is a record; any other `{` is a block expression.
      { ALT: () => this.SUBRULE(this.recordExpr), IGNORE_AMBIGUITIES: true },
      { ALT: () => this.SUBRULE(this.blockStmt) },
      { ALT: () => this.SUBRULE(this.ifExpr) },
      { ALT: () => this.SUBRULE(this.repeatExpr) },
      { ALT: () => this.SUBRULE(this.frozenExpr) },
    ]));
  });

  /** `(e)` or a tuple `(a, b)` */
  parenExpr = this.RULE("parenExpr", () => {
    this.CONSUME(T.LParen);
    this.SUBRULE(this.expr);
    this.MANY(() => {
      this.CONSUME(T.Comma);
      this.SUBRULE2(this.expr);
    });
    this.CONSUME(T.RParen);
  });

  listExpr = this.RULE("listExpr", () => {
    this.CONSUME(T.LBracket);
    this.OPTION(() => {
      this.SUBRULE(this.expr);
      this.MANY(() => {
        this.CONSUME(T.Comma);
        this.SUBRULE2(this.expr);
      });
    });
    this.CONSUME(T.RBracket);
  });

  recordExpr = this.RULE("recordExpr", () => {
    this.CONSUME(T.LBrace);
    this.SUBRULE(this.fields);
    this.CONSUME(T.RBrace);
  });

  ifExpr = this.RULE("ifExpr", () => {
    this.CONSUME(T.If);
    this.SUBRULE(this.expr);
    // `if a = b {`: parsed so that build.ts can say "write '=='" and keep the whole if.
    this.OPTION2(() => {
      this.CONSUME(T.Equals, { LABEL: "badEquals" });
      this.SUBRULE2(this.expr, { LABEL: "badRhs" });
    });
    this.SUBRULE(this.blockStmt);
    this.OPTION(() => {
      this.CONSUME(T.Else);
      this.OR((this.alts.ifExpr ??= [{ ALT: () => this.SUBRULE(this.ifExpr) }, { ALT: () => this.SUBRULE2(this.blockStmt) }]));
    });
  });

  repeatExpr = this.RULE("repeatExpr", () => {
    this.CONSUME(T.Repeat);
    this.CONSUME(T.LParen);
    this.SUBRULE(this.expr);
    this.CONSUME(T.RParen);
    this.SUBRULE(this.postfixExpr);
  });

  frozenExpr = this.RULE("frozenExpr", () => {
    this.CONSUME(T.Frozen);
    this.SUBRULE(this.postfixExpr);
  });
}

export type { CstNode };
