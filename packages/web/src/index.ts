export { buildSite, exportSite, runArtifacts, SiteError, type Site, type SiteFile, type SiteOptions } from './site.js';
export { serveSite } from './serve.js';
export { bundlePage, kernelSources, PAGES } from './bundle.js';
export { MANIFEST_FORMAT, type SiteManifest, type SiteTask, type SiteSample } from './manifest.js';
