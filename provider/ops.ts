// What the plugin does for one of its custom resources: the CRUD operations of the engine's provider protocol on
// plain values (provider/index.ts unwraps secrets before and marks secret outputs after).

/** A resource's properties as the engine hands them over; each resource's operations take them as their own type. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the Pulumi provider SDK (provider.Provider) types property bags as any
export type Props = any;

export interface ResourceOps {
    create(inputs: Props): Promise<{ id: string; outs: Record<string, Props> }>;
    read?(id: string, props: Props): Promise<{ id?: string; props: Record<string, Props> }>;
    diff(id: string, olds: Props, news: Props): Promise<{ changes: boolean; replaces?: string[]; deleteBeforeReplace?: boolean }>;
    update?(id: string, olds: Props, news: Props): Promise<{ outs: Record<string, Props> }>;
    delete?(id: string, props: Props): Promise<void>;
}
