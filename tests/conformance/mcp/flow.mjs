// One step of an agent's flow with the TypeScript MCP SDK's own client, one process a step:
//   node flow.mjs <stdio|http> <target> create <local_part>
//   node flow.mjs <stdio|http> <target> wait <handle>
// stdio: the target is the burnbox URL, and this starts `burnbox mcp --url` (BURNBOX_BIN)
// with its stderr captured; http: the target is the /mcp URL. Prints one JSON line:
// the tool's structured result and, for stdio, what the server wrote to stderr.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [transportKind, target, step, argument] = process.argv.slice(2);
let stderr = "";
const transport = transportKind === "stdio"
  ? new StdioClientTransport({
      command: process.env.BURNBOX_BIN,
      args: ["mcp", "--url", target],
      stderr: "pipe",
    })
  : new StreamableHTTPClientTransport(new URL(target));
if (transportKind === "stdio") {
  transport.stderr.on("data", (chunk) => { stderr += chunk.toString(); });
}
const client = new Client({ name: "burnbox-test", version: "1.0.0" });
await client.connect(transport);
const call = step === "create"
  ? { name: "create_inbox", arguments: { local_part: argument } }
  : { name: "wait_for_code", arguments: { inbox: argument, timeout_s: 30 } };
const result = await client.callTool(call);
await client.close();
process.stdout.write(JSON.stringify({ result: result.structuredContent, isError: result.isError ?? false, stderr }) + "\n");
