// wgsl_reflect's plain entry point fails under ESM; its module build has the same API.
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
