// How the plugin reaches a host, as the program describes it and the plugin dials it: the SSH target, its bastion,
// and the connection of a drift check (with remote.Command's retry settings).

export interface SshProxy {
    host: string;
    port: number;
    user: string;
    /** The bastion's expected key (`type base64`); unset = any key (accept-new, first contact). */
    hostKey?: string;
}

export interface SshTarget {
    host: string;
    port: number;
    user: string;
    /** The private key (OpenSSH or PEM); empty with privateKeyPath. */
    privateKey: string;
    /**
     * A file holding the private key, read at each dial (absolute, or relative to the plugin's working directory: the
     * checkout, which is the TypeScript program's project directory; provider/main.ts). The state then keeps the path, not the key, and a key rotated in that file is used as
     * soon as it is there. Used when privateKey is empty.
     */
    privateKeyPath?: string;
    /** The expected key (`type base64`); unset = any key (accept-new, first contact). */
    hostKey?: string;
    /** Without hostKey: the key type to ask for (default: any, ed25519 first). */
    hostKeyType?: string;
    /** Reach the host through this bastion (as connection.proxy of @pulumi/command). */
    proxy?: SshProxy;
}

export interface CheckConnection extends SshTarget {
    /** Failed connection attempts tolerated (as remote.Command's dialErrorLimit). Default: 10. */
    dialErrorLimit?: number;
    /** Seconds one connection attempt may take until the session is ready (as remote.Command's). Default: 10. */
    perDialTimeout?: number;
}
