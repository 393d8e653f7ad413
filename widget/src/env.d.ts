// esbuild loads .css files as text (scripts/build.mjs), injected into the app's shadow root.
declare module '*.css' {
  const css: string;
  export default css;
}
