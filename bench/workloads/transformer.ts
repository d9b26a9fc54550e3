import type { Ctx, Row, Workload } from "../row.ts";
export const transformer: Workload = { name: "transformer", about: "todo", async run(_: Ctx): Promise<Row[]> { return []; } };
