// What the program and the provider plugin agree on about drift checks, without any import: the plugin loads it at
// its start, where the Pulumi SDK's root module (about 0.6 s to load) is not needed.
/** The report of a check that found nothing (two lines: a string the engine shows as a line diff when it changes). */
export const NO_DRIFT = "drift found by the last check:\n(none)\n";

/**
 * The shell command that writes its stdin to `file` atomically. The temp file is this shell's own ($$): the host's
 * other checks may put the same library file back at the same moment.
 */
export function putFileCommand(file: string): string {
    const dir = file.replace(/\/[^/]*$/, "") || "/";
    return `mkdir -p ${dir} && cat > ${file}.tmp.$$ && mv -f ${file}.tmp.$$ ${file}`;
}

/** Checks that sudo works, as the first command on a host of a non-root user: a clear error otherwise. */
export const SUDO_CHECK = `sudo -n true 2>/dev/null || { echo "host-topology: $(hostname): user $(id -un) cannot run sudo without a password (sudo -n true failed)" >&2; exit 1; }`;

/** Seconds one SSH connection attempt may take: remote.Command's default, and the plugin's. */
export const DEFAULT_PER_DIAL_TIMEOUT = 10;
