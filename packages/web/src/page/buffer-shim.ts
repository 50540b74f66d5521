// Injected by bundle.ts wherever bundled code names the global Buffer (there is none in a browser).
export { Buffer } from 'buffer';
