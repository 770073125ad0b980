//! Starting the measured processes: `homa-bench worker` for HOMA and the rdkafka loop, a JVM
//! for Kafka Streams (built from `kafka-streams/` with Maven first).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{Context, bail};

use crate::worker::WorkerArgs;
use crate::workload::System;

/// The Kafka Streams reference, compiled, with the JVM options it runs with.
#[derive(Debug, Clone)]
pub struct JavaApp {
    classpath: String,
    /// The JVM's maximum heap (`-Xmx`), as given to `java`.
    pub heap: String,
    /// The Kafka Streams version the Maven project uses.
    pub kafka_streams_version: String,
    /// `java -version`'s first line.
    pub java_version: String,
}

impl JavaApp {
    /// Builds the Maven project in `dir` (`mvn package`: classes and the runtime jars).
    pub fn build(dir: &Path, heap: &str) -> anyhow::Result<Self> {
        let pom = dir.join("pom.xml");
        let pom_text =
            std::fs::read_to_string(&pom).with_context(|| format!("reading {}", pom.display()))?;
        let output = Command::new("mvn")
            .args(["-q", "-B", "-Dstyle.color=never", "-DskipTests", "-f"])
            .arg(&pom)
            .arg("package")
            .output()
            .context("running mvn (Maven builds the Kafka Streams reference)")?;
        if !output.status.success() {
            bail!(
                "mvn package of {} failed ({}):\n{}{}",
                pom.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let java = Command::new("java")
            .arg("-version")
            .output()
            .context("running java -version")?;
        let target = dir.join("target");
        Ok(JavaApp {
            classpath: format!(
                "{}:{}/*",
                target.join("classes").display(),
                target.join("lib").display()
            ),
            heap: heap.to_string(),
            kafka_streams_version: xml_property(&pom_text, "kafka.version")
                .unwrap_or("unknown")
                .to_string(),
            java_version: String::from_utf8_lossy(&java.stderr)
                .lines()
                .next()
                .unwrap_or("unknown")
                .to_string(),
        })
    }
}

/// The text of `<name>…</name>` in a POM.
fn xml_property<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = start + xml[start..].find(&format!("</{name}>"))?;
    Some(xml[start..end].trim())
}

/// Starts the systems under test.
#[derive(Debug)]
pub struct Launcher {
    exe: PathBuf,
    java: Option<JavaApp>,
}

impl Launcher {
    /// A launcher of this executable's workers and, when given, the Kafka Streams app.
    pub fn new(java: Option<JavaApp>) -> anyhow::Result<Self> {
        Ok(Launcher {
            exe: std::env::current_exe().context("locating homa-bench")?,
            java,
        })
    }

    /// The Kafka Streams app, if it was built.
    pub fn java(&self) -> Option<&JavaApp> {
        self.java.as_ref()
    }

    /// Starts `system` on `args`, its output going to `log`.
    pub fn spawn(&self, system: System, args: &WorkerArgs, log: &Path) -> anyhow::Result<Child> {
        let mut command = match system {
            System::KafkaStreams => {
                let Some(java) = &self.java else {
                    bail!("the Kafka Streams reference was not built");
                };
                let mut command = Command::new("java");
                command
                    .arg(format!("-Xmx{}", java.heap))
                    .arg("-Dorg.slf4j.simpleLogger.defaultLogLevel=warn")
                    .args(["-cp", &java.classpath, "dev.homa.bench.KafkaStreamsBench"]);
                command
            }
            System::Homa | System::Rdkafka => {
                let mut command = Command::new(&self.exe);
                command.args(["worker", system.name()]);
                command
            }
        };
        let out = File::create(log).with_context(|| format!("creating {}", log.display()))?;
        command
            .args(args.to_flags())
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {system}"))
    }
}

/// The last `lines` lines of a log file, for error messages.
pub fn log_tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_pom_property() {
        let pom = "<properties>\n <kafka.version> 4.4.0 </kafka.version>\n</properties>";
        assert_eq!(xml_property(pom, "kafka.version"), Some("4.4.0"));
        assert_eq!(xml_property(pom, "slf4j.version"), None);
    }
}
