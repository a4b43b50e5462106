// The config keys that hold secrets, and the check that a stack file keeps them encrypted.

/** Config keys that hold a secret and must be stored encrypted (`pulumi config set --secret`). */
export const SECRET_CONFIG_KEYS = ["sshPrivateKey"] as const;

/**
 * The keys of SECRET_CONFIG_KEYS that a stack file (Pulumi.<stack>.yaml, as text) holds in plain text: any value of
 * `<project>:<key>` but a `secure:` one. (Not declared `secret: true` in Pulumi.yaml, which would make the key required in
 * every stack: the program refuses a plaintext value itself.)
 */
export function plaintextSecrets(stackFile: string, project: string): string[] {
    const lines = stackFile.split("\n");
    const found: string[] = [];
    for (const key of SECRET_CONFIG_KEYS) {
        const i = lines.findIndex((l) => new RegExp(`^\\s+${project}:${key}:(\\s|$)`).test(l));
        if (i < 0) continue;
        const rest = lines[i]
            .slice(lines[i].indexOf(`${key}:`) + key.length + 1)
            .replace(/\s+#.*$/, "")
            .trim();
        const next = lines.slice(i + 1).find((l) => l.trim() !== "" && !l.trim().startsWith("#")) ?? "";
        const secure = rest === "" ? /^\s+secure:\s*\S/.test(next) : /^\{\s*secure:\s*\S/.test(rest);
        if (!secure) found.push(key);
    }
    return found;
}
