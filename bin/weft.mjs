#!/usr/bin/env node
// The `weft` command. Weft is written in TypeScript and run through tsx, so the
// installed package needs no build step.
import { register } from "tsx/esm/api";

register();
const { main } = await import("../cli/main.ts");
process.exitCode = await main(process.argv.slice(2));
