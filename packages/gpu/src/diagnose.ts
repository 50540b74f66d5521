import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';

const ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d', '/usr/local/share/vulkan/icd.d'];

export const LAVAPIPE_FIX =
  'bash scripts/setup.sh   (as root; installs Mesa lavapipe from bookworm-backports: ' +
  'add a deb822 source for suite bookworm-backports, then apt-get install -y -t bookworm-backports mesa-vulkan-drivers)';

/** Why no adapter opened, as far as the machine shows it; used only to word the error. */
export function diagnoseNoAdapter(): string {
  if (process.platform !== 'linux') return 'no adapter reported by Dawn on this platform';
  let loader = false;
  try {
    loader = execFileSync('ldconfig', ['-p'], { encoding: 'utf8' }).includes('libvulkan.so.1');
  } catch {
    loader = existsSync('/usr/lib/x86_64-linux-gnu/libvulkan.so.1');
  }
  if (!loader) return 'the Vulkan loader (libvulkan.so.1) is not installed';
  for (const v of ['VK_ICD_FILENAMES', 'VK_DRIVER_FILES']) {
    const files = process.env[v];
    if (files && !files.split(':').every(existsSync))
      return `${v}=${files} points the Vulkan loader at driver file(s) that do not exist (unset it to use the installed drivers)`;
  }
  const icds = ICD_DIRS.filter(existsSync).flatMap((d) => readdirSync(d).filter((f) => f.endsWith('.json')));
  if (icds.length === 0) return `no Vulkan driver is installed (no ICD file in ${ICD_DIRS.join(', ')})`;
  let mesa = '';
  try {
    mesa = execFileSync('dpkg-query', ['-W', '-f=${Version}', 'mesa-vulkan-drivers'], { encoding: 'utf8' });
  } catch {
    /* not a Debian machine, or the package is absent */
  }
  if (mesa && Number(mesa.split(/[.:]/)[0]) < 24) return `Mesa's Vulkan drivers are version ${mesa}, which Dawn refuses (it needs Mesa 24 or newer)`;
  return `Vulkan drivers are present (${icds.join(', ')}) but none offered an adapter Dawn accepts`;
}
