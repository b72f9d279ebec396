#!/usr/bin/env python3
"""Checks deploy/kubernetes without a cluster.

- Every manifest parses, and every object validates against the Kubernetes
  OpenAPI schema of its kind (tests/data/kubernetes/schemas.json, strict:
  a misspelt field fails), with Debian's python3-jsonschema.
- What the schema cannot see: selectors match their pod templates, a
  StatefulSet's serviceName and a Service's selector and named target port
  exist, volume mounts name volumes, $(VAR) in command and args names an env
  entry of that container (Kubernetes leaves an unknown one as literal text),
  resourceFieldRef names a container, each init container that copies the
  agent copies it where the main container runs it from, on a volume both
  mount.
- Every --flag given to gangway-agent or gangway-coordinator is one the
  built binary lists in --help (GANGWAY_BINARY_DIR; skipped, saying so,
  in a build of some targets only, as scripts/sanitize --ci makes), and
  every Secret the manifests mount is made in docs/deploy.md.
- The kustomization lists only files that exist.
- And the checks themselves catch a broken manifest of each kind above.

Run by ctest (tests/CMakeLists.txt); also `GANGWAY_BINARY_DIR=build
tests/deploy/kubernetes_test.py`.
"""
import copy
import json
import os
import re
import subprocess
import sys
import unittest

try:
    import jsonschema
    import yaml
except ImportError as e:  # CI installs both: fail, do not skip
    sys.exit(f"kubernetes_test: {e}: install python3-yaml and python3-jsonschema "
             "(scripts/install-deps)")

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
DEPLOY = os.path.join(ROOT, "deploy", "kubernetes")
SCHEMAS = os.path.join(ROOT, "tests", "data", "kubernetes", "schemas.json")
GANGWAY_BINARIES = {"gangway-agent": "agent/gangway-agent",
                    "gangway-coordinator": "coordinator/gangway-coordinator"}
WORKLOADS = ("StatefulSet", "DaemonSet", "Deployment")


def load_manifests():
    """{file name: [objects]} for every YAML file but the kustomization."""
    out = {}
    for name in sorted(os.listdir(DEPLOY)):
        if name.endswith(".yaml") and name != "kustomization.yaml":
            with open(os.path.join(DEPLOY, name)) as f:
                out[name] = [d for d in yaml.safe_load_all(f) if d is not None]
    return out


class Checker:
    """Collects problems in a set of objects; each is one line naming where."""

    def __init__(self, schemas, help_texts):
        self.schemas = schemas
        self.help_texts = help_texts  # binary basename -> its --help output
        self.problems = []

    def fail(self, where, what):
        self.problems.append(f"{where}: {what}")

    def schema(self, where, obj):
        if not isinstance(obj, dict):
            return self.fail(where, "not a mapping")
        key = f'{obj.get("apiVersion")}/{obj.get("kind")}'
        if key not in self.schemas["kinds"]:
            return self.fail(where, f"no schema for {key} (tests/data/kubernetes/make_schemas.py)")
        schema = {"definitions": self.schemas["definitions"], **self.schemas["kinds"][key]}
        validator = jsonschema.Draft4Validator(schema)
        for err in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
            path = "/".join(str(p) for p in err.absolute_path)
            self.fail(where, f"{path or '(top)'}: {err.message[:300]}")

    def check(self, objects):
        """`objects`: [(where, obj)] of one deployment, checked together."""
        for where, obj in objects:
            self.schema(where, obj)
        valid = [(w, o) for w, o in objects if isinstance(o, dict)]
        services = {o["metadata"].get("name"): o for w, o in valid
                    if o.get("kind") == "Service" and isinstance(o.get("metadata"), dict)}
        templates = []
        for where, obj in valid:
            if obj.get("kind") in WORKLOADS:
                templates.append(self.workload(f'{where} {obj["kind"]}/{obj["metadata"].get("name")}',
                                               obj, services))
        for name, svc in services.items():
            self.service(f"Service/{name}", svc, [t for t in templates if t])

    def workload(self, where, obj, services):
        spec = obj.get("spec") or {}
        tmpl = spec.get("template") or {}
        labels = (tmpl.get("metadata") or {}).get("labels") or {}
        for k, v in ((spec.get("selector") or {}).get("matchLabels") or {}).items():
            if labels.get(k) != v:
                self.fail(where, f"selector {k}={v} does not match the pod template's labels")
        if obj.get("kind") == "StatefulSet":
            name = spec.get("serviceName")
            if name not in services:
                self.fail(where, f"serviceName {name!r} is not a Service of these manifests")
            elif (services[name].get("spec") or {}).get("clusterIP") != "None":
                self.fail(where, f"serviceName {name!r} is not headless (clusterIP: None)")
        pod = tmpl.get("spec") or {}
        volumes = {v.get("name"): v for v in pod.get("volumes") or []}
        for claim in spec.get("volumeClaimTemplates") or []:
            volumes[(claim.get("metadata") or {}).get("name")] = {"claim": True}
        containers = pod.get("containers") or []
        inits = pod.get("initContainers") or []
        names = [c.get("name") for c in containers + inits]
        for c in containers + inits:
            self.container(f'{where} container {c.get("name")}', c, volumes, names)
        for init in inits:
            self.copied_agent(f'{where} initContainer {init.get("name")}', init, containers)
        return {"labels": labels, "ports": {p.get("name") for c in containers
                                            for p in c.get("ports") or [] if p.get("name")}}

    def container(self, where, c, volumes, container_names):
        for m in c.get("volumeMounts") or []:
            if m.get("name") not in volumes:
                self.fail(where, f'volumeMount {m.get("name")!r} names no volume')
        env = c.get("env") or []
        defined = {e.get("name") for e in env}
        for arg in (c.get("command") or []) + (c.get("args") or []):
            for var in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", str(arg)):
                if var not in defined:
                    self.fail(where, f"$({var}) in {arg!r} is not in its env (it would stay literal)")
        for e in env:
            ref = ((e.get("valueFrom") or {}).get("resourceFieldRef") or {})
            if ref and ref.get("containerName", c.get("name")) not in container_names:
                self.fail(where, f'env {e.get("name")}: resourceFieldRef names no container')
        command = c.get("command") or []
        binary = os.path.basename(str(command[0])) if command else ""
        if binary in self.help_texts:
            known = set(re.findall(r"(--[a-z][a-z0-9-]*)", self.help_texts[binary]))
            for arg in c.get("args") or []:
                flag = str(arg).split("=", 1)[0]
                if flag.startswith("--") and flag not in known:
                    self.fail(where, f"{binary} has no flag {flag} (see its --help)")

    def copied_agent(self, where, init, containers):
        command = init.get("command") or []
        if not command or os.path.basename(str(command[0])) != "cp":
            return
        target = str(command[-1])
        users = [c for c in containers if (c.get("command") or [None])[0] == target]
        if not users:
            return self.fail(where, f"copies to {target}, which no container runs")
        def volume_at(c, path):
            for m in c.get("volumeMounts") or []:
                if path.startswith(m.get("mountPath", "").rstrip("/") + "/"):
                    return m.get("name")
            return None
        shared = volume_at(init, target)
        for c in users:
            if shared is None or volume_at(c, target) != shared:
                self.fail(where, f'{target} is not on a volume it shares with {c.get("name")}')

    def service(self, where, svc, templates):
        spec = svc.get("spec") or {}
        selector = spec.get("selector") or {}
        matching = [t for t in templates
                    if all(t["labels"].get(k) == v for k, v in selector.items())]
        if not matching:
            return self.fail(where, f"selector {selector} matches no pod template")
        for p in spec.get("ports") or []:
            target = p.get("targetPort")
            if isinstance(target, str) and not any(target in t["ports"] for t in matching):
                self.fail(where, f"targetPort {target!r} is no container port of its pods")


def help_texts():
    """({binary: --help output}, "") or ({}, why not): a build of some
    targets only (scripts/sanitize --ci) has no daemons to ask."""
    bin_dir = os.environ.get("GANGWAY_BINARY_DIR", os.path.join(ROOT, "build"))
    out = {}
    for name, rel in GANGWAY_BINARIES.items():
        path = os.path.join(bin_dir, rel)
        if not os.path.exists(path):
            return {}, f"{path} was not built"
        r = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise RuntimeError(f"{path} --help exited {r.returncode}: {r.stderr}")
        out[name] = r.stdout
    return out, ""


class KubernetesManifests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(SCHEMAS) as f:
            cls.schemas = json.load(f)
        cls.helps, cls.no_helps = help_texts()
        cls.manifests = load_manifests()

    def checker(self):
        return Checker(self.schemas, self.helps)

    def all_objects(self):
        return [(f"{name}[{i}]", o) for name, docs in self.manifests.items()
                for i, o in enumerate(docs)]

    def test_every_manifest_validates(self):
        self.assertTrue(self.manifests, f"no manifests in {DEPLOY}")
        c = self.checker()
        c.check(self.all_objects())
        self.assertEqual(c.problems, [])

    def test_gangway_flags_are_checked_against_the_binaries(self):
        if not self.helps:
            self.skipTest(f"flags not checked: {self.no_helps}")
        self.assertEqual(set(self.helps), set(GANGWAY_BINARIES))

    def test_kustomization_lists_existing_manifests(self):
        with open(os.path.join(DEPLOY, "kustomization.yaml")) as f:
            k = yaml.safe_load(f)
        self.assertEqual(k.get("apiVersion"), "kustomize.config.k8s.io/v1beta1")
        self.assertEqual(k.get("kind"), "Kustomization")
        self.assertTrue(k.get("resources"))
        for r in k["resources"]:
            self.assertTrue(os.path.isfile(os.path.join(DEPLOY, r)), f"{r} does not exist")
        # What kustomize builds must hold together on its own too (the
        # sidecar file is the alternative left out).
        c = self.checker()
        c.check([(f"{r}[{i}]", o) for r in k["resources"]
                 for i, o in enumerate(self.manifests.get(r, []))])
        self.assertEqual(c.problems, [])
        images = {i["name"] for i in k.get("images", [])}
        used = set()
        for r in k["resources"]:
            with open(os.path.join(DEPLOY, r)) as f:
                used |= set(re.findall(r"image: ([^\s:]+)", f.read()))
        self.assertLessEqual(images, used, "an `images` entry names no image used")

    def test_every_mounted_secret_is_documented(self):
        with open(os.path.join(ROOT, "docs", "deploy.md")) as f:
            docs = f.read()
        secrets = set()
        for _, o in self.all_objects():
            tmpl = ((o.get("spec") or {}).get("template") or {}).get("spec") or {}
            for v in tmpl.get("volumes") or []:
                if "secret" in v:
                    secrets.add(v["secret"]["secretName"])
        self.assertTrue(secrets)
        for s in sorted(secrets):
            self.assertIn(f"secret generic {s}", docs, f"docs/deploy.md does not make {s}")

    # ---- the checks catch what they claim to ----------------------------

    def problems_after(self, file, doc, edit):
        objects = copy.deepcopy(self.all_objects())
        for where, o in objects:
            if where == f"{file}[{doc}]":
                edit(o)
        c = self.checker()
        c.check(objects)
        return c.problems

    def assertCaught(self, problems, text):
        self.assertTrue(any(text in p for p in problems), f"{text!r} not in {problems}")

    def test_catches_a_misspelt_field(self):
        def edit(o):
            o["spec"]["template"]["spec"]["containers"][0]["volumeMount"] = []
        self.assertCaught(self.problems_after("coordinator.yaml", 2, edit),
                          "'volumeMount' was unexpected")

    def test_catches_a_missing_required_field(self):
        def edit(o):
            del o["spec"]["selector"]
        self.assertCaught(self.problems_after("agent-daemonset.yaml", 0, edit),
                          "'selector' is a required property")

    def test_catches_a_wrong_type(self):
        def edit(o):
            o["spec"]["replicas"] = "one"
        self.assertCaught(self.problems_after("coordinator.yaml", 2, edit), "replicas")

    def test_catches_an_unknown_gangway_flag(self):
        if not self.helps:
            self.skipTest(f"flags not checked: {self.no_helps}")
        def edit(o):
            o["spec"]["template"]["spec"]["containers"][0]["args"].append("--tls-certificate=x")
        self.assertCaught(self.problems_after("agent-daemonset.yaml", 0, edit),
                          "gangway-agent has no flag --tls-certificate")

    def test_catches_an_undefined_variable(self):
        def edit(o):
            o["spec"]["template"]["spec"]["containers"][0]["env"] = [
                e for e in o["spec"]["template"]["spec"]["containers"][0]["env"]
                if e["name"] != "NODE_NAME"]
        self.assertCaught(self.problems_after("agent-daemonset.yaml", 0, edit),
                          "$(NODE_NAME)")

    def test_catches_a_selector_that_misses(self):
        def edit(o):
            o["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] = "x"
        self.assertCaught(self.problems_after("coordinator.yaml", 2, edit),
                          "does not match the pod template")

    def test_catches_a_mount_without_a_volume(self):
        def edit(o):
            o["spec"]["template"]["spec"]["volumes"] = [
                v for v in o["spec"]["template"]["spec"]["volumes"] if v["name"] != "tls"]
        self.assertCaught(self.problems_after("agent-sidecar.yaml", 0, edit),
                          "volumeMount 'tls' names no volume")

    def test_catches_an_agent_copied_where_nothing_runs_it(self):
        def edit(o):
            o["spec"]["template"]["spec"]["initContainers"][0]["command"][-1] = "/gangway/agent"
        self.assertCaught(self.problems_after("agent-sidecar.yaml", 0, edit),
                          "which no container runs")

    def test_catches_a_service_without_pods(self):
        def edit(o):
            o["spec"]["selector"] = {"app": "nothing"}
        self.assertCaught(self.problems_after("coordinator.yaml", 0, edit),
                          "matches no pod template")

    def test_catches_a_missing_governing_service(self):
        def edit(o):
            o["spec"]["serviceName"] = "nope"
        self.assertCaught(self.problems_after("coordinator.yaml", 2, edit),
                          "serviceName 'nope'")


if __name__ == "__main__":
    unittest.main(verbosity=2)
