import { acquireDevice } from "../../runtime/webgpu/device.ts";
const h = await acquireDevice({ requireGpu: true });
console.log(h!.info, h!.features, h!.adapter.info);
