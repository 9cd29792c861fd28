// node validate.mjs OBJECTS_JSON: checks kbundle's bootstrap objects (docs/bootstrap.md) against
// the Kubernetes OpenAPI schema, with the validators kubernetes-models generates from it (one per
// definition, e.g. IoK8sApiAppsV1Deployment: types, enums, formats, required fields).
// Those validators, like the OpenAPI schema itself, let unknown fields through; the API server's
// strict field validation would not, so this script also reports every field the schema's
// validator never looked at (it reads each known property by name and enumerates only maps).
// Prints one line per problem, "objects[i] Kind/name: where: what"; exits 1 when there is any.
import { readFileSync } from "node:fs";

const problems = [];
const problem = (where, what) => problems.push(`${where}: ${what}`);

// The object behind a Proxy that records which properties the validator read.
function tracked(obj) {
  const nodes = [];
  function wrap(o, path) {
    if (o === null || typeof o !== "object") return o;
    const node = { o, path, read: new Set(), enumerated: false, kids: new Map() };
    nodes.push(node);
    return new Proxy(o, {
      get(t, k, r) {
        const v = Reflect.get(t, k, r);
        if (typeof k !== "string") return v;
        node.read.add(k);
        if (v === null || typeof v !== "object" || !Object.hasOwn(t, k)) return v;
        if (!node.kids.has(k)) node.kids.set(k, wrap(v, `${path}/${k}`));
        return node.kids.get(k);
      },
      has(t, k) {
        node.read.add(k);
        return Reflect.has(t, k);
      },
      ownKeys(t) {
        node.enumerated = true;  // a map (labels, data, ...): every key was seen
        return Reflect.ownKeys(t);
      },
    });
  }
  return {
    root: wrap(obj, ""),
    unknown() {
      const out = [];
      for (const n of nodes)
        if (!Array.isArray(n.o) && !n.enumerated)
          for (const k of Object.keys(n.o)) if (!n.read.has(k)) out.push(`${n.path}/${k}`);
      return out;
    },
  };
}

const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);

// apiVersion "apps/v1", kind "Deployment" -> kubernetes-models/_schemas/IoK8sApiAppsV1Deployment
async function validatorFor(apiVersion, kind) {
  const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["core", apiVersion];
  const name = `IoK8sApi${cap(group.split(".")[0])}${cap(version)}${kind}`;
  try {
    return (await import(`kubernetes-models/_schemas/${name}`)).validate;
  } catch {
    return null;
  }
}

function expectedApiPath(o) {
  const v = o.apiVersion ?? "";
  const base = v.includes("/") ? `/apis/${v}` : `/api/${v}`;
  const ns = o.metadata?.namespace ? `/namespaces/${o.metadata.namespace}` : "";
  return `${base}${ns}/${String(o.kind).toLowerCase()}s/${o.metadata?.name}`;
}

const file = process.argv[2];
const doc = JSON.parse(readFileSync(file, "utf8"));
const header = { version: 1, field_manager: "kbundle" };
for (const [k, v] of Object.entries(header)) if (doc[k] !== v) problem(file, `${k} is ${JSON.stringify(doc[k])}, want ${JSON.stringify(v)}`);
for (const k of ["api_server", "ca_file", "cert_file", "key_file"])
  if (typeof doc[k] !== "string" || doc[k] === "") problem(file, `${k} is missing`);
if (!Array.isArray(doc.objects) || doc.objects.length === 0) problem(file, "no objects");

let checked = 0;
for (const [i, entry] of (doc.objects ?? []).entries()) {
  const o = entry.object ?? {};
  const where = `objects[${i}] ${o.kind}/${o.metadata?.name}`;
  const extra = Object.keys(entry).filter((k) => k !== "api_path" && k !== "object");
  if (extra.length) problem(where, `unknown keys ${extra.join(", ")} beside api_path and object`);
  if (entry.api_path !== expectedApiPath(o)) problem(where, `api_path ${entry.api_path}, want ${expectedApiPath(o)}`);
  if (o.metadata?.labels?.["app.kubernetes.io/managed-by"] !== "kbundle") problem(where, "no app.kubernetes.io/managed-by: kbundle label");
  const validate = await validatorFor(o.apiVersion, o.kind);
  if (!validate) {
    problem(where, `no OpenAPI schema for apiVersion ${o.apiVersion} kind ${o.kind}`);
    continue;
  }
  const t = tracked(o);
  if (!validate(t.root))
    for (const e of validate.errors) problem(where, `${e.instancePath || "/"}: ${e.message ?? e.keyword} ${JSON.stringify(e.params)}`);
  for (const path of t.unknown()) problem(where, `${path}: unknown field (not in the OpenAPI schema)`);
  checked++;
}

for (const p of problems) console.log(p);
if (problems.length) process.exit(1);
console.log(`ok: ${checked} objects valid against the Kubernetes OpenAPI schema (kubernetes-models)`);
