#!/usr/bin/env python3
"""Cuts the JSON schemas of the kinds deploy/kubernetes uses out of the
Kubernetes OpenAPI (swagger 2.0) document, closed under $ref.

    make_schemas.py swagger.json > schemas.json

What it changes, so that jsonschema checks what the API server would:
- IntOrString (a port, maxUnavailable) accepts an integer or a string, and
  Quantity (cpu: 1, memory: 1Gi) a number or a quantity string: swagger
  calls both strings, and the server accepts either.
- Every object with declared properties gets additionalProperties: false,
  so a misspelt field fails (the server would silently drop it).
- Each top-level kind requires apiVersion, kind and metadata, and pins
  apiVersion and kind to its group/version/kind.
- Descriptions are dropped (size).
"""
import json
import sys

KINDS = [
    "io.k8s.api.core.v1.Namespace",
    "io.k8s.api.core.v1.Service",
    "io.k8s.api.apps.v1.StatefulSet",
    "io.k8s.api.apps.v1.DaemonSet",
]
INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"


def refs(node, out):
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/definitions/"):
            out.add(ref[len("#/definitions/"):])
        for v in node.values():
            refs(v, out)
    elif isinstance(node, list):
        for v in node:
            refs(v, out)


def strip(schema):
    """Walks one schema (not a properties map, whose keys are field names)."""
    if not isinstance(schema, dict):
        return
    schema.pop("description", None)
    for field in schema.get("properties", {}).values():
        strip(field)
    for key in ("items", "additionalProperties"):
        strip(schema.get(key))
    if "properties" in schema and "additionalProperties" not in schema:
        schema["additionalProperties"] = False


def main():
    swagger = json.load(open(sys.argv[1]))
    defs = swagger["definitions"]
    keep, todo = set(), list(KINDS)
    while todo:
        name = todo.pop()
        if name in keep:
            continue
        keep.add(name)
        found = set()
        refs(defs[name], found)
        todo.extend(found - keep)
    out = {name: json.loads(json.dumps(defs[name])) for name in sorted(keep)}
    for d in out.values():
        strip(d)
    out[INT_OR_STRING] = {"anyOf": [{"type": "integer"}, {"type": "string"}]}
    out[QUANTITY] = {"anyOf": [
        {"type": "number"},
        {"type": "string", "pattern": r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+|[numkMGTPE]|[KMGTPE]i)?$"},
    ]}
    kinds = {}
    for name in KINDS:
        gvk = out[name].pop("x-kubernetes-group-version-kind")[0]
        api = gvk["version"] if not gvk["group"] else f'{gvk["group"]}/{gvk["version"]}'
        out[name]["required"] = sorted(set(out[name].get("required", [])) |
                                       {"apiVersion", "kind", "metadata"})
        out[name]["properties"]["apiVersion"] = {"type": "string", "enum": [api]}
        out[name]["properties"]["kind"] = {"type": "string", "enum": [gvk["kind"]]}
        kinds[f'{api}/{gvk["kind"]}'] = {"$ref": "#/definitions/" + name}
    for d in out.values():
        d.pop("x-kubernetes-group-version-kind", None)
    json.dump({
        "$schema": "http://json-schema.org/draft-04/schema#",
        "info": swagger["info"],
        "kinds": kinds,
        "definitions": out,
    }, sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
