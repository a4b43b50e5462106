// ESLint 9 flat config: the TypeScript community's defaults (ESLint's and typescript-eslint's recommended rules), with
// eslint-config-prettier last so that layout is Prettier's alone (npm run format; npm run lint checks both).
import js from "@eslint/js";
import prettier from "eslint-config-prettier";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
    {
        ignores: [
            "node_modules/",
            ".tools/",
            ".lab/",
            ".pulumi-state/",
            "tests/fixtures/**/node_modules/",
            "provider/sdk/",
            "provider/node_modules/",
            "bench/floor/node_modules/",
            // npm run pack: the compiled plugin and the generated SDKs.
            "dist/",
        ],
    },
    {
        files: ["**/*.ts", "**/*.js"],
        extends: [js.configs.recommended, tseslint.configs.recommended],
    },
    {
        files: ["**/*.js"],
        languageOptions: { globals: globals.node },
    },
    // The Pulumi projects that Pulumi runs as CommonJS (their package.json has no "type": "module"): require() is how
    // they load their packages there.
    {
        files: ["bench/floor/**/*.js", "tests/fixtures/producer/**/*.js"],
        languageOptions: { sourceType: "commonjs" },
        rules: { "@typescript-eslint/no-require-imports": "off" },
    },
    prettier,
);
