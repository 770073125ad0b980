//! `docker-compose.yml` cannot run here (no Docker engine), so this test reads it and checks
//! it against what the README promises a user with Docker: the services, their health
//! checks, the published ports, and the bootstrap and Schema Registry addresses.

use homa_integration_tests::repo_root;
use yaml_rust2::{Yaml, YamlLoader};

fn repo_file(name: &str) -> String {
    let path = repo_root().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn compose() -> Yaml {
    let docs = YamlLoader::load_from_str(&repo_file("docker-compose.yml"))
        .expect("docker-compose.yml is valid YAML");
    assert_eq!(docs.len(), 1, "docker-compose.yml holds one document");
    docs.into_iter().next().expect("one document")
}

fn service<'a>(compose: &'a Yaml, name: &str) -> &'a Yaml {
    let service = &compose["services"][name];
    assert!(
        !service.is_badvalue(),
        "docker-compose.yml has no service `{name}`"
    );
    service
}

/// The environment of a service as `KEY=value` strings, from either compose notation.
fn env(service: &Yaml, key: &str) -> String {
    let value = &service["environment"][key];
    match value {
        Yaml::String(s) => s.clone(),
        Yaml::Integer(i) => i.to_string(),
        Yaml::Boolean(b) => b.to_string(),
        other => panic!("environment {key} is missing or not a scalar: {other:?}"),
    }
}

/// The host ports a service publishes (`"host:container"` entries).
fn published_ports(service: &Yaml) -> Vec<(u16, u16)> {
    service["ports"]
        .as_vec()
        .expect("the service publishes ports")
        .iter()
        .map(|p| {
            let text = p
                .as_str()
                .expect("ports are quoted \"host:container\" strings");
            let (host, container) = text.split_once(':').expect("host:container");
            (
                host.parse().expect("host port"),
                container.parse().expect("container port"),
            )
        })
        .collect()
}

/// The README's section on Docker, up to the next heading of the same level.
fn readme_docker_section() -> String {
    let readme = repo_file("README.md");
    let start = readme
        .find("### With Docker")
        .expect("README has a `### With Docker` section");
    let rest = &readme[start + 3..];
    let end = rest.find("\n### ").map_or(rest.len(), |i| i + 3);
    rest[..end].to_string()
}

/// The first backquoted `prefix...` address in the Docker section of the README.
fn readme_address(section: &str, prefix: &str) -> String {
    section
        .split('`')
        .skip(1)
        .step_by(2)
        .find(|s| s.starts_with(prefix))
        .unwrap_or_else(|| panic!("the README's Docker section names no `{prefix}...` address"))
        .to_string()
}

fn port_of(address: &str) -> u16 {
    address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("no port in {address}"))
}

#[test]
fn services_have_images_and_health_checks() {
    let compose = compose();
    let kafka = service(&compose, "kafka");
    let registry = service(&compose, "schema-registry");

    let image = kafka["image"].as_str().expect("kafka image");
    let pom = repo_file("scripts/kafka-pom.xml");
    let version = pom
        .split("<kafka.version>")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("scripts/kafka-pom.xml sets kafka.version");
    assert_eq!(
        image,
        format!("apache/kafka:{version}"),
        "the same Kafka as the tests run on"
    );
    assert!(
        registry["image"]
            .as_str()
            .is_some_and(|i| i.starts_with("confluentinc/cp-schema-registry:")),
        "Schema Registry image: {:?}",
        registry["image"]
    );
    assert_eq!(
        env(kafka, "KAFKA_PROCESS_ROLES"),
        "broker,controller",
        "KRaft, single node"
    );

    for (name, service) in [("kafka", kafka), ("schema-registry", registry)] {
        let test = &service["healthcheck"]["test"];
        assert!(
            test.as_vec().is_some_and(|t| t.len() >= 2),
            "{name} has a health check: {test:?}"
        );
    }
    assert_eq!(
        registry["depends_on"]["kafka"]["condition"].as_str(),
        Some("service_healthy"),
        "Schema Registry waits for a healthy broker"
    );
}

#[test]
fn readme_addresses_match_the_compose_file() {
    let compose = compose();
    let kafka = service(&compose, "kafka");
    let registry = service(&compose, "schema-registry");
    let section = readme_docker_section();

    // From the host: the advertised host listener, published on the same port.
    let bootstrap = readme_address(&section, "localhost:");
    let advertised = env(kafka, "KAFKA_ADVERTISED_LISTENERS");
    assert!(
        advertised
            .split(',')
            .any(|l| l.ends_with(&format!("://{bootstrap}"))),
        "README bootstrap {bootstrap} is not advertised: {advertised}"
    );
    let port = port_of(&bootstrap);
    assert!(
        published_ports(kafka).contains(&(port, port)),
        "port {port} of kafka is published"
    );

    // From a container: the internal listener, which Schema Registry itself uses.
    let internal = readme_address(&section, "kafka:");
    assert!(
        advertised
            .split(',')
            .any(|l| l.ends_with(&format!("://{internal}"))),
        "README container bootstrap {internal} is not advertised: {advertised}"
    );
    let store = env(registry, "SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS");
    assert!(
        store.ends_with(&internal),
        "Schema Registry reads {store}, README says {internal}"
    );

    let registry_url = readme_address(&section, "http://localhost:");
    let registry_port = port_of(&registry_url);
    assert!(
        published_ports(registry).contains(&(registry_port, registry_port)),
        "port {registry_port} of schema-registry is published"
    );
    let listeners = env(registry, "SCHEMA_REGISTRY_LISTENERS");
    assert!(
        listeners.ends_with(&format!(":{registry_port}")),
        "Schema Registry listens on {listeners}"
    );
}
