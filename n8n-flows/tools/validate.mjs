#!/usr/bin/env node
// Offline check of n8n workflow files with n8n's own packages (no database, no server, ~1 s).
//
//   node validate.mjs --app "$N8N_HOME/app" --credentials ../credentials.template.json ../workflows/*.json
//
// Run it with the node 24 of the pinned install (scripts/n8n-install.sh). For each file it checks:
//  1. n8n-workflow's safeParseWorkflowStructure (the check `n8n import:workflow` runs);
//  2. every node type and typeVersion exists in n8n-nodes-base / n8n-nodes-langchain;
//  3. parameters: unknown parameter names (typos n8n would silently keep), and the issues n8n's
//     editor shows (NodeHelpers.getNodeParametersIssues after getNodeParameters resolves defaults);
//  4. credentials: each slot is one the node uses with these parameters (getActiveCredentialTypes),
//     required slots are filled (validateNodeCredentials), and each id exists in the credentials
//     file with the same name and type;
//  5. connections: sources, targets and output indexes exist (getNodeOutputs, incl. error outputs),
//     no node is left unconnected;
//  6. @n8n/workflow-sdk's validateWorkflow (graph lint: trigger present, ...).
// Prints one JSON report on stdout: {"files": [{"file", "workflowId", "errors": [...], "warnings": [...]}]};
// exits 1 when any file has an error.
import { createRequire } from 'node:module';
import { readFileSync } from 'node:fs';
import path from 'node:path';

function parseArgs(argv) {
  const args = { app: null, credentials: null, files: [] };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--app') args.app = argv[++i];
    else if (argv[i] === '--credentials') args.credentials = argv[++i];
    else args.files.push(argv[i]);
  }
  if (!args.app || !args.files.length) {
    console.error('usage: validate.mjs --app <n8n app folder> [--credentials <file>] <workflow.json>...');
    process.exit(2);
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const appRequire = createRequire(path.join(path.resolve(args.app), 'package.json'));
const n8nRequire = createRequire(appRequire.resolve('n8n/package.json'));
const { NodeHelpers, Workflow, safeParseWorkflowStructure, validateNodeCredentials } = n8nRequire('n8n-workflow');
let sdk = null;
try { sdk = n8nRequire('@n8n/workflow-sdk'); } catch { /* optional: older n8n */ }

// Node descriptions: every version group of every node type, as n8n's editor gets them.
const descriptions = new Map(); // type -> [{versions, description}]
for (const [pkg, prefix] of [['n8n-nodes-base', 'n8n-nodes-base.'], ['@n8n/n8n-nodes-langchain', '@n8n/n8n-nodes-langchain.']]) {
  let list;
  try { list = n8nRequire(`${pkg}/dist/types/nodes.json`); } catch { continue; }
  for (const description of list) {
    const type = prefix + description.name;
    if (!descriptions.has(type)) descriptions.set(type, []);
    descriptions.get(type).push({ versions: [].concat(description.version), description });
  }
}
const describe = (type, version) =>
  (descriptions.get(type) || []).find((entry) => entry.versions.includes(version))?.description;
const nodeTypes = {
  getByName: (type) => { const d = (descriptions.get(type) || [])[0]?.description; return d && { description: d }; },
  getByNameAndVersion: (type, version) => { const d = describe(type, version); return d && { description: d }; },
  getKnownTypes: () => ({}),
};

const credentialFile = args.credentials ? JSON.parse(readFileSync(args.credentials, 'utf8')) : null;
const credentialsById = new Map((credentialFile || []).map((c) => [c.id, c]));

function visibleNames(properties, parameters, node, description) {
  // Names of the properties shown for these parameters (a name can have several variants).
  const names = new Set();
  for (const property of properties) {
    if (NodeHelpers.displayParameter(parameters, property, node, description)) names.add(property.name);
  }
  return names;
}

function checkParameters(node, description, errors) {
  const parameters = node.parameters || {};
  const known = new Set(description.properties.map((p) => p.name));
  for (const key of Object.keys(parameters)) {
    if (!known.has(key)) errors.push(`node "${node.name}": unknown parameter "${key}" for ${node.type} v${node.typeVersion}`);
  }
  const full = NodeHelpers.getNodeParameters(description.properties, parameters, true, false, node, description);
  const shown = visibleNames(description.properties, full, node, description);
  for (const key of Object.keys(parameters)) {
    if (known.has(key) && !shown.has(key)) {
      errors.push(`node "${node.name}": parameter "${key}" is not used with these settings (check its displayOptions)`);
    }
  }
  // One level into collections ("options"): option names must exist.
  for (const property of description.properties) {
    if (property.type !== 'collection' || !NodeHelpers.displayParameter(full, property, node, description)) continue;
    const value = parameters[property.name];
    if (!value || typeof value !== 'object') continue;
    const optionNames = new Set((property.options || []).map((o) => o.name));
    for (const key of Object.keys(value)) {
      if (!optionNames.has(key)) errors.push(`node "${node.name}": unknown option "${property.name}.${key}"`);
    }
  }
  const issues = NodeHelpers.getNodeParametersIssues(description.properties, { ...node, parameters: full }, description);
  for (const [parameter, messages] of Object.entries(issues?.parameters || {})) {
    errors.push(`node "${node.name}": parameter "${parameter}": ${[].concat(messages).join('; ')}`);
  }
  return full;
}

function checkCredentials(node, description, fullParameters, errors) {
  const withFull = { ...node, parameters: fullParameters };
  const active = NodeHelpers.getActiveCredentialTypes(withFull, description) || new Set();
  for (const issue of validateNodeCredentials(withFull, { description })) {
    errors.push(`node "${node.name}": credential "${issue.credentialName}" ${issue.type}`);
  }
  for (const [slot, reference] of Object.entries(node.credentials || {})) {
    if (!active.has(slot)) {
      errors.push(`node "${node.name}": credential slot "${slot}" is not used by ${node.type} with these parameters`);
      continue;
    }
    if (!credentialFile) continue;
    const stored = credentialsById.get(reference?.id);
    if (!stored) errors.push(`node "${node.name}": credential id "${reference?.id}" is not in the credentials file`);
    else if (stored.type !== slot) errors.push(`node "${node.name}": credential "${reference.id}" has type "${stored.type}", slot needs "${slot}"`);
    else if (stored.name !== reference.name) errors.push(`node "${node.name}": credential "${reference.id}" is named "${stored.name}" in the credentials file, "${reference.name}" here`);
  }
}

function checkConnections(workflow, wf, errors, warnings) {
  const byName = new Map(wf.nodes.map((n) => [n.name, n]));
  const connected = new Set();
  for (const [source, types] of Object.entries(wf.connections || {})) {
    const node = byName.get(source);
    if (!node) { errors.push(`connection from unknown node "${source}"`); continue; }
    const description = describe(node.type, node.typeVersion);
    const outputs = description ? NodeHelpers.getNodeOutputs(workflow, node, description) : [];
    for (const [type, outputsList] of Object.entries(types)) {
      (outputsList || []).forEach((targets, index) => {
        if ((targets || []).length && index >= outputs.length) {
          errors.push(`node "${source}" has no ${type} output ${index} (it has ${outputs.length})`);
        }
        for (const target of targets || []) {
          if (!byName.has(target.node)) errors.push(`connection from "${source}" to unknown node "${target.node}"`);
          connected.add(source); connected.add(target.node);
        }
      });
    }
  }
  for (const node of wf.nodes) {
    if (!connected.has(node.name) && node.type !== 'n8n-nodes-base.stickyNote') {
      errors.push(`node "${node.name}" is not connected`);
    }
  }
}

const report = { files: [] };
let failed = false;
for (const file of args.files) {
  const errors = [];
  const warnings = [];
  let wf;
  try { wf = JSON.parse(readFileSync(file, 'utf8')); } catch (e) { errors.push(`not JSON: ${e.message}`); }
  if (wf) {
    const parsed = safeParseWorkflowStructure(wf);
    if (!parsed.success) {
      for (const issue of parsed.issues || [parsed.error]) {
        errors.push(`structure: ${issue?.message || JSON.stringify(issue)} (at ${(issue?.path || []).join('.')})`);
      }
    }
    if (!wf.id || wf.id.length > 21) errors.push('needs a stable workflow "id" of at most 21 characters');
    const names = new Set();
    for (const node of wf.nodes || []) {
      if (names.has(node.name)) errors.push(`two nodes are named "${node.name}"`);
      names.add(node.name);
      const description = describe(node.type, node.typeVersion);
      if (!descriptions.has(node.type)) { errors.push(`node "${node.name}": unknown node type ${node.type}`); continue; }
      if (!description) {
        const versions = descriptions.get(node.type).flatMap((e) => e.versions).join(', ');
        errors.push(`node "${node.name}": ${node.type} has no typeVersion ${node.typeVersion} (known: ${versions})`);
        continue;
      }
      const full = checkParameters(node, description, errors);
      checkCredentials(node, description, full, errors);
    }
    if (parsed.success) {
      let workflow = null;
      try {
        workflow = new Workflow({ id: wf.id, name: wf.name, nodes: wf.nodes, connections: wf.connections,
          active: false, nodeTypes, settings: wf.settings || {} });
      } catch (e) { errors.push(`n8n cannot build the workflow: ${e.message}`); }
      if (workflow) checkConnections(workflow, wf, errors, warnings);
    }
    if (sdk?.validateWorkflow) {
      try {
        const result = sdk.validateWorkflow(wf, { validateSchema: false });
        for (const e of result.errors || []) errors.push(`workflow-sdk: ${e.message || e.code || JSON.stringify(e)}`);
        for (const w of result.warnings || []) warnings.push(`workflow-sdk: ${w.message || w.code || JSON.stringify(w)}`);
      } catch (e) { warnings.push(`workflow-sdk could not run: ${e.message}`); }
    }
  }
  if (errors.length) failed = true;
  report.files.push({ file, workflowId: wf?.id ?? null, errors, warnings });
}
console.log(JSON.stringify(report, null, 2));
process.exit(failed ? 1 : 0);
