import type { Ctx, Row, Workload } from "../row.ts";
export const mlp: Workload = { name: "mlp", about: "todo", async run(_: Ctx): Promise<Row[]> { return []; } };
