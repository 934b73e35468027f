#!/usr/bin/env python3
"""Validate a JSON document against one schema of an OpenAPI 3.0 document.

usage: openapi_validate.py OPENAPI.json SCHEMA_NAME FILE.json

Exit 0 when FILE is valid, 1 (with the reasons) when it is not.  The
schemas are checked strictly: an object schema that lists its properties
admits no others, so a field the document does not describe fails.
OpenAPI's `nullable: true` becomes JSON Schema's type [T, "null"].
Used by tests/test_rest.c with Debian's python3-jsonschema.
"""
import json
import sys

import jsonschema


def strict(node):
    if isinstance(node, dict):
        if node.get("nullable") is True and "type" in node:
            node["type"] = [node["type"], "null"]
            del node["nullable"]
        if "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        for v in node.values():
            strict(v)
    elif isinstance(node, list):
        for v in node:
            strict(v)


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        api = json.load(f)
    with open(sys.argv[3]) as f:
        doc = json.load(f)
    schemas = api["components"]["schemas"]
    if sys.argv[2] not in schemas:
        sys.exit("no schema %s in %s" % (sys.argv[2], sys.argv[1]))
    strict(schemas)
    root = {"components": {"schemas": schemas},
            "allOf": [{"$ref": "#/components/schemas/" + sys.argv[2]}]}
    v = jsonschema.Draft7Validator(root)
    errors = sorted(v.iter_errors(doc), key=lambda e: list(e.path))
    for e in errors:
        print("%s: %s: %s" % (sys.argv[3], "/".join(map(str, e.path)),
                              e.message))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
