import type { Ctx, Row, Workload } from "../row.ts";
export const firstStep: Workload = { name: "ttfs", about: "todo", async run(_: Ctx): Promise<Row[]> { return []; } };
export async function runFirstStepChild(_: string[]): Promise<number> { return 0; }
