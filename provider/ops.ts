// What the plugin does for one of its custom resources: the CRUD operations of the engine's provider protocol on
// plain values (provider/index.ts unwraps secrets before and marks secret outputs after).
export interface ResourceOps {
    create(inputs: any): Promise<{ id: string; outs: Record<string, any> }>;
    read?(id: string, props: any): Promise<{ id?: string; props: Record<string, any> }>;
    diff(id: string, olds: any, news: any): Promise<{ changes: boolean; replaces?: string[]; deleteBeforeReplace?: boolean }>;
    update?(id: string, olds: any, news: any): Promise<{ outs: Record<string, any> }>;
    delete?(id: string, props: any): Promise<void>;
}
