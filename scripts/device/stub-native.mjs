// The device bundle (scripts/device-pack.sh) leaves out the native image libraries: its checks
// decode no images and draw no SVG. Reaching for one says so instead of failing to load.
const missing = (name) => {
  throw new Error(`${name} is not in the device bundle: scripts/device-check.sh runs the GPU checks only`);
};
export default function sharp() {
  missing('sharp');
}
export class Resvg {
  constructor() {
    missing('@resvg/resvg-js');
  }
}
