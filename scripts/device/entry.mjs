// The device bundle's entry (scripts/device-pack.sh): benchmark.js looks up lodash and platform
// with a require that a bundle cannot serve, then on the global object: put them there first.
import lodash from 'lodash';
import platform from 'platform';

globalThis._ = lodash;
globalThis.platform = platform;
await import('../../packages/cli/dist/main.js');
