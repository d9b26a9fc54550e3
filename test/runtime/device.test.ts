import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { acquireDevice, awaitGpu, type GpuHandle } from "../../runtime/webgpu/device.ts";
import { gpu } from "../gpu.ts";
import { spawnAsync } from "../util/spawn.ts";

const root = resolve(import.meta.dirname, "../..");
const deviceUrl = pathToFileURL(join(root, "runtime/webgpu/device.ts")).href;

/** Run a small TypeScript module in a fresh Node process (so env and GC are its own). */
async function runChild(code: string, env: Record<string, string | undefined>) {
  const dir = mkdtempSync(join(tmpdir(), "weft-device-test-"));
  const file = join(dir, "child.mts");
  writeFileSync(file, code);
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  for (const [k, v] of Object.entries(env)) if (v === undefined) delete childEnv[k];
  try {
    return await spawnAsync(process.execPath, ["--import", "tsx", file], { cwd: root, env: childEnv, timeout: 60_000 });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("acquireDevice", () => {
  let h: GpuHandle;
  beforeAll(async () => {
    h = await gpu();
  });

  it("returns one cached device with raised limits and a description", async () => {
    expect(await acquireDevice()).toBe(h);
    expect(h.info.length).toBeGreaterThan(0);
    for (const f of h.features) expect(["shader-f16", "timestamp-query", "subgroups"]).toContain(f);
    for (const f of h.features) expect(h.device.features.has(f)).toBe(true);
    expect(h.device.limits.maxStorageBufferBindingSize).toBe(h.adapter.limits.maxStorageBufferBindingSize);
    expect(h.device.limits.maxComputeInvocationsPerWorkgroup).toBe(h.adapter.limits.maxComputeInvocationsPerWorkgroup);
    expect(typeof GPUBufferUsage.STORAGE).toBe("number");
  });

  it("surfaces uncaptured device errors through throwIfFailed()", async () => {
    h.throwIfFailed();
    h.device.createBuffer({ size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.STORAGE });
    await awaitGpu(h.device.queue.onSubmittedWorkDone());
    expect(() => h.throwIfFailed()).toThrow(/GPUValidationError.*MapRead/s);
    expect(() => h.throwIfFailed()).not.toThrow();
  });

  it("awaitGpu() stops dawn-node from re-polling through setImmediate", async () => {
    const { device } = h;
    const code = `@group(0) @binding(0) var<storage, read_write> o: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3u) {
  var x = f32(g.x); for (var i = 0u; i < 250000u; i++) { x = x * 0.9999 + 1.0; } o[g.x] = x; }`;
    const pipe = await awaitGpu(device.createComputePipelineAsync({ layout: "auto", compute: { module: device.createShaderModule({ code }) } }));
    const buf = device.createBuffer({ size: 4 * 4096, usage: GPUBufferUsage.STORAGE });
    const bg = device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: buf } }] });
    const job = () => {
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipe);
      pass.setBindGroup(0, bg);
      pass.dispatchWorkgroups(64);
      pass.end();
      device.queue.submit([enc.finish()]);
      return device.queue.onSubmittedWorkDone();
    };
    const mainCpuMs = (): number => {
      const f = readFileSync(`/proc/self/task/${process.pid}/stat`, "utf8").split(") ")[1].split(" ");
      return (Number(f[11]) + Number(f[12])) * 10; // utime + stime, in 10 ms ticks
    };
    const hasProc = existsSync(`/proc/self/task/${process.pid}/stat`);

    // Count the immediates dawn schedules (its tick is a native, nameless, 0-ary function).
    const real = globalThis.setImmediate;
    let ticks = 0;
    const counting = (cb: unknown, ...args: unknown[]) => {
      if (typeof cb === "function" && cb.name === "" && cb.length === 0 && args.length === 0) ticks++;
      return Reflect.apply(real, globalThis, [cb, ...args]);
    };
    Reflect.set(globalThis, "setImmediate", counting);
    try {
      await job(); // warm up
      ticks = 0;
      await job();
      const spinTicks = ticks;

      ticks = 0;
      const c0 = hasProc ? mainCpuMs() : 0;
      const t0 = performance.now();
      await awaitGpu(job());
      const wall = performance.now() - t0;
      const cpu = hasProc ? mainCpuMs() - c0 : 0;
      // Plain await: dawn re-polls thousands of times. awaitGpu: only during its first 2 ms.
      expect(spinTicks).toBeGreaterThan(1000);
      expect(ticks).toBeLessThan(spinTicks / 10);
      if (hasProc) expect(cpu).toBeLessThan(0.3 * wall + 20);
      if (process.env.WEFT_DEBUG) console.error(`awaitGpu: dawn ticks ${spinTicks} spinning vs ${ticks}; main-thread cpu ${cpu} ms over ${wall.toFixed(0)} ms`);

      // Other code's setImmediate still works while a wait is pending.
      const other = await awaitGpu(Promise.all([job(), new Promise<string>((r) => setImmediate(r, "ok"))]));
      expect(other[1]).toBe("ok");
    } finally {
      Reflect.set(globalThis, "setImmediate", real);
    }
    expect(globalThis.setImmediate).toBe(real);
  });

  it("creates a private XDG_RUNTIME_DIR when none is set", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "weft-xdg-test-"));
    const r = await runChild(
      `import { acquireDevice } from ${JSON.stringify(deviceUrl)};
       const h = await acquireDevice();
       console.log(JSON.stringify({ ok: h !== null, xdg: process.env.XDG_RUNTIME_DIR }));
       process.exit(0);`,
      { XDG_RUNTIME_DIR: undefined, TMPDIR: tmp },
    );
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim().split("\n").pop()!) as { ok: boolean; xdg: string };
    expect(out.ok).toBe(true);
    expect(out.xdg.startsWith(tmp)).toBe(true);
    expect(statSync(out.xdg).mode & 0o777).toBe(0o700);
    rmSync(tmp, { recursive: true, force: true });
  });
});

describe("acquireDevice without an adapter", () => {
  // Pointing the Vulkan loader at no driver leaves dawn-node without an adapter.
  const noVulkan = { VK_ICD_FILENAMES: "/nonexistent/none.json", VK_DRIVER_FILES: "/nonexistent/none.json", WEFT_REQUIRE_GPU: undefined };

  it("returns null and prints nothing of its own", async () => {
    const r = await runChild(
      `import { acquireDevice } from ${JSON.stringify(deviceUrl)};
       process.stdout.write(String(await acquireDevice()));
       process.exit(0);`,
      noVulkan,
    );
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toBe("null");
    expect(r.stderr).not.toMatch(/weft/i);
  });

  it("throws a clear Error when a GPU is required", async () => {
    const r = await runChild(
      `import { acquireDevice } from ${JSON.stringify(deviceUrl)};
       try { await acquireDevice(); console.log("no error"); } catch (e) { console.log("ERR " + (e as Error).message); }
       process.exit(0);`,
      { ...noVulkan, WEFT_REQUIRE_GPU: "1" },
    );
    expect(r.stdout).toMatch(/^ERR no WebGPU adapter .*npm run setup.*lavapipe/);
  });
});
