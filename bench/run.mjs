#!/usr/bin/env node
// `npm run bench`: the benchmark suite runs through tsx like the rest of Weft.
// Options: --quick, --only NAME[,NAME], --list, --readme, --spin (see bench/main.ts).
import { register } from "tsx/esm/api";

register();
const { main } = await import("./main.ts");
process.exitCode = await main(process.argv.slice(2));
