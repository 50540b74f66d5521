/** What the page fetches first (artifacts/manifest.json): the run's files as URLs, the tasks' classes, the samples. */
export const MANIFEST_FORMAT = 'mode-web-1';

export interface SiteTask {
  name: string;
  classes: string[];
  templates: string[];
}

export interface SiteSample {
  /** The PNG, relative to the page. */
  url: string;
  task: string;
  label: number;
  /** Its record in the test shards. */
  key: string;
}

export interface SiteManifest {
  format: typeof MANIFEST_FORMAT;
  /** The run folder's name. */
  run: string;
  created: string;
  /** Each expert's weights (safetensors with its config), in expert order. */
  experts: string[];
  /** The clustering text encoder: the seed model the captions were embedded with. */
  encoder: string;
  /** Per clustering (the run's, then each added expert's): fine centres, fine → expert, its experts' count. */
  clusters: { fine: string; coarse: string; experts: number }[];
  tokenizer: string;
  tasks: SiteTask[];
  samples: SiteSample[];
}
