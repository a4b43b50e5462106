// The plugin's entry when the Node.js language host starts it (PulumiPlugin.yaml): a JavaScript file, because the
// language host compiles a TypeScript main with its own ts-node whatever PulumiPlugin.yaml's options say. Node.js
// runs main.ts itself (type stripping), as the launcher does.
import "./main.ts";
