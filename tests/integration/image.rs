//! The container image `.ci/image.sh` built (tests/run.sh runs it before the tests): a valid OCI
//! layout whose blobs match their digests, one scratch-like layer (the static binary, passwd and
//! group, nothing else: no shell), the nonroot user, the entrypoint and the
//! `org.opencontainers.image.*` labels; the root `Dockerfile`, the Helm chart's default image and
//! the README's deploy section say the same.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::pod::{image_layout, unpack_image};
use crate::support::TempDir;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Reads a blob and checks it against its digest and size; returns its bytes.
fn blob(layout: &Path, descriptor: &Value) -> Vec<u8> {
    let digest = descriptor["digest"].as_str().expect("a digest");
    let hex = digest.strip_prefix("sha256:").expect("a sha256 digest");
    let bytes = std::fs::read(layout.join("blobs/sha256").join(hex)).expect("the blob exists");
    let actual: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(actual, hex, "the blob's content matches its digest");
    assert_eq!(descriptor["size"].as_u64(), Some(bytes.len() as u64), "{digest}: size");
    bytes
}

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("JSON")
}

/// `[package]`'s `key = "value"` in Cargo.toml.
fn cargo_field(key: &str) -> String {
    let toml = std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).expect("Cargo.toml");
    toml.lines()
        .find_map(|l| l.strip_prefix(key).and_then(|r| r.trim_start().strip_prefix('=')))
        .map(|v| v.trim().trim_matches('"').to_owned())
        .unwrap_or_else(|| panic!("Cargo.toml has no {key}"))
}

/// The image's config (via index → manifest) and the path of its one layer blob.
fn image() -> (Value, Value, std::path::PathBuf) {
    let layout = image_layout();
    assert_eq!(json(&std::fs::read(layout.join("oci-layout")).expect("oci-layout"))["imageLayoutVersion"], "1.0.0");
    let index = json(&std::fs::read(layout.join("index.json")).expect("index.json"));
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 1, "{index}");
    assert_eq!(manifests[0]["annotations"]["org.opencontainers.image.ref.name"], env!("CARGO_PKG_VERSION"));
    assert_eq!(manifests[0]["platform"]["os"], "linux");
    let manifest = json(&blob(&layout, &manifests[0]));
    assert_eq!(manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json");
    let config = json(&blob(&layout, &manifest["config"]));
    let layers = manifest["layers"].as_array().expect("layers");
    assert_eq!(layers.len(), 1, "one layer: {manifest}");
    assert_eq!(layers[0]["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip");
    blob(&layout, &layers[0]);
    let hex = layers[0]["digest"].as_str().and_then(|d| d.strip_prefix("sha256:")).expect("digest").to_owned();
    (manifest, config, layout.join("blobs/sha256").join(hex))
}

#[test]
fn image_is_scratch_like_nonroot_labelled_and_static() {
    let (manifest, config, layer) = image();
    let c = &config["config"];
    assert_eq!(c["User"], "65532:65532", "{config}");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/usr/bin/leakwatch"]));
    assert!(c["ExposedPorts"]["10171/tcp"].is_object(), "{config}");
    let labels = &c["Labels"];
    for (key, want) in [
        ("title", "leakwatch".to_owned()),
        ("version", env!("CARGO_PKG_VERSION").to_owned()),
        ("licenses", cargo_field("license")),
        ("source", cargo_field("repository")),
        ("description", cargo_field("description")),
    ] {
        assert_eq!(labels[format!("org.opencontainers.image.{key}")], want.as_str(), "label {key}: {config}");
    }
    let revision = labels["org.opencontainers.image.revision"].as_str().expect("a revision label");
    assert!(revision.len() == 40 && revision.chars().all(|c| c.is_ascii_hexdigit()), "a git commit: {revision}");
    let known =
        Command::new("git").args(["cat-file", "-e", &format!("{revision}^{{commit}}")]).current_dir(ROOT).status();
    assert!(known.is_ok_and(|s| s.success()), "the revision {revision} is a commit of this repository");
    assert_eq!(manifest["annotations"]["org.opencontainers.image.version"], env!("CARGO_PKG_VERSION"));

    // The layer: exactly these entries, all root-owned.
    let out = Command::new("tar").arg("-tvzf").arg(&layer).output().expect("run tar");
    assert!(out.status.success(), "tar -tvzf: {}", String::from_utf8_lossy(&out.stderr));
    let listing = String::from_utf8_lossy(&out.stdout).into_owned();
    let entries: Vec<(&str, &str, &str)> = listing
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f[0], f[1], *f.last().expect("a name"))
        })
        .collect();
    let names: BTreeSet<&str> = entries.iter().map(|e| e.2.trim_end_matches('/')).collect();
    assert_eq!(
        names,
        BTreeSet::from(["etc", "etc/group", "etc/passwd", "usr", "usr/bin", "usr/bin/leakwatch"]),
        "nothing but the binary, passwd and group (no shell):\n{listing}"
    );
    for (mode, owner, name) in &entries {
        assert_eq!(*owner, "0/0", "{name} is root-owned");
        if *name == "usr/bin/leakwatch" {
            assert_eq!(*mode, "-rwxr-xr-x", "{name}");
        }
    }

    // Unpacked by umoci (which checks the digests itself): the user, and a static binary.
    let dir = TempDir::new("image");
    let bundle = dir.path().join("bundle");
    let runtime = unpack_image(&bundle);
    assert_eq!(runtime["process"]["user"]["uid"], 65532);
    assert_eq!(runtime["process"]["user"]["gid"], 65532);
    let rootfs = bundle.join("rootfs");
    let passwd = std::fs::read_to_string(rootfs.join("etc/passwd")).expect("etc/passwd");
    assert!(passwd.lines().any(|l| l.starts_with("nonroot:x:65532:65532:")), "{passwd}");
    let group = std::fs::read_to_string(rootfs.join("etc/group")).expect("etc/group");
    assert!(group.lines().any(|l| l.starts_with("nonroot:x:65532:")), "{group}");
    assert!(!rootfs.join("bin/sh").exists() && !rootfs.join("usr/bin/sh").exists(), "no shell");
    let binary = rootfs.join("usr/bin/leakwatch");
    let elf = std::fs::read(&binary).expect("the binary");
    assert!(!has_interpreter(&elf), "a static binary has no program interpreter (PT_INTERP)");
    let version = Command::new(&binary).arg("--version").output().expect("run the image's binary");
    assert!(String::from_utf8_lossy(&version.stdout).contains(env!("CARGO_PKG_VERSION")), "{version:?}");
    let size = std::fs::metadata(&layer).expect("layer").len();
    eprintln!("image: one layer of {size} bytes compressed; binary {} bytes", elf.len());
}

/// Whether a 64-bit little-endian ELF file has a PT_INTERP program header.
fn has_interpreter(elf: &[u8]) -> bool {
    assert_eq!(&elf[..5], b"\x7fELF\x02", "a 64-bit ELF file");
    let u64_at = |o: usize| u64::from_le_bytes(elf[o..o + 8].try_into().expect("8 bytes")) as usize;
    let u16_at = |o: usize| u16::from_le_bytes(elf[o..o + 2].try_into().expect("2 bytes")) as usize;
    let (phoff, phentsize, phnum) = (u64_at(0x20), u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| elf[phoff + i * phentsize..][..4] == 3u32.to_le_bytes())
}

#[test]
fn dockerfile_chart_and_readme_match_the_image_script() {
    let (_, config, _) = image();
    let c = &config["config"];
    let dockerfile = std::fs::read_to_string(Path::new(ROOT).join("Dockerfile")).expect("Dockerfile");
    let stage = dockerfile.split("\nFROM scratch").nth(1).expect("a final FROM scratch stage");
    let line = |keyword: &str| {
        stage.lines().find_map(|l| l.strip_prefix(keyword)).map(str::trim).unwrap_or_else(|| panic!("no {keyword}"))
    };
    assert_eq!(line("USER "), c["User"].as_str().expect("User"));
    let entrypoint: Value = serde_json::from_str(line("ENTRYPOINT ")).expect("ENTRYPOINT in JSON form");
    assert_eq!(entrypoint, c["Entrypoint"]);
    assert_eq!(line("EXPOSE "), "10171/tcp");
    assert_eq!(line("ARG VERSION="), env!("CARGO_PKG_VERSION"), "the Dockerfile's default version");
    let copies: BTreeSet<&str> =
        stage.lines().filter(|l| l.starts_with("COPY ")).filter_map(|l| l.split_whitespace().last()).collect();
    assert_eq!(copies, BTreeSet::from(["/etc/group", "/etc/passwd", "/usr/bin/leakwatch"]), "the same files");
    assert!(stage.contains("COPY .ci/image/passwd /etc/passwd") && stage.contains("COPY .ci/image/group /etc/group"));
    // The same labels (the script adds `created`, which Docker records in the config itself).
    let docker_labels: BTreeSet<String> = regex::Regex::new(r"(org\.opencontainers\.image\.[a-z]+)=")
        .expect("regex")
        .captures_iter(stage)
        .map(|m| m[1].to_owned())
        .collect();
    let script_labels: BTreeSet<String> = c["Labels"]
        .as_object()
        .expect("labels")
        .keys()
        .filter(|k| k.as_str() != "org.opencontainers.image.created")
        .cloned()
        .collect();
    assert_eq!(docker_labels, script_labels);
    for (key, value) in [("source", cargo_field("repository")), ("licenses", cargo_field("license"))] {
        assert!(stage.contains(&format!("org.opencontainers.image.{key}=\"{value}\"")), "{key}");
    }
    assert!(stage.contains(&format!("org.opencontainers.image.description=\"{}\"", cargo_field("description"))));
    assert!(dockerfile.contains("-C target-feature=+crt-static"), "the same static build");

    // The chart pulls what the script builds: leakwatch/leakwatch:<version>.
    let script = std::fs::read_to_string(Path::new(ROOT).join(".ci/image.sh")).expect(".ci/image.sh");
    assert!(script.contains("name=\"${LEAKWATCH_IMAGE_NAME:-leakwatch/leakwatch}\""), "the script's default name");
    let chart = std::fs::read_to_string(Path::new(ROOT).join("helm/leakwatch/Chart.yaml")).expect("Chart.yaml");
    assert!(chart.contains(&format!("appVersion: \"{}\"", env!("CARGO_PKG_VERSION"))), "Chart.yaml appVersion");
    let values = std::fs::read_to_string(Path::new(ROOT).join("helm/leakwatch/values.yaml")).expect("values.yaml");
    assert!(values.contains("  repository: leakwatch/leakwatch\n"), "values.yaml image.repository");
    assert!(values.contains(&format!("  tag: \"{}\"\n", env!("CARGO_PKG_VERSION"))), "values.yaml image.tag");
    let readme = std::fs::read_to_string(Path::new(ROOT).join("README.md")).expect("README.md");
    let version = env!("CARGO_PKG_VERSION");
    for command in [
        "bash .ci/image.sh".to_owned(),
        format!("skopeo copy oci:target/oci:{version} docker://"),
        format!("docker build -t leakwatch/leakwatch:{version}"),
        "--set image.repository=".to_owned(),
    ] {
        assert!(readme.contains(&command), "the README's deploy section shows `{command}`");
    }
}
