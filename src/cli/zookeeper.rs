//! Debian's Apache ZooKeeper 3.8 (package `zookeeper`) as a server of a local ensemble: its
//! classpath, its log4j configuration and the `java` command line. Used by
//! `zkelect bench --vs-zookeeper` and the interoperability tests (which include this file).

use std::path::Path;
use std::process::{Command, Stdio};

/// Where the package puts ZooKeeper itself.
pub const JAR: &str = "/usr/share/java/zookeeper.jar";

/// What a server needs on its classpath. zookeeper.jar's own `Class-Path` lacks the last two:
/// netty-codec (TLS between servers) and servlet-api (the AdminServer).
pub const CLASSPATH: [&str; 5] = [
    JAR,
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
    "/usr/share/java/netty-codec.jar",
    "/usr/share/java/servlet-api.jar",
];

/// The server's main class.
pub const MAIN_CLASS: &str = "org.apache.zookeeper.server.quorum.QuorumPeerMain";

/// The jars of [`CLASSPATH`] that are not installed.
pub fn missing_jars() -> Vec<&'static str> {
    CLASSPATH.iter().copied().filter(|j| !Path::new(j).exists()).collect()
}

/// log4j 1.2 configuration that writes everything from INFO up into `log_file`, in zkelect's
/// line layout (`2026-11-25 13:24:21,107 - INFO  [thread:Class@line] - message`), so that one
/// reader parses both implementations' logs.
pub fn log4j_properties(log_file: &Path) -> String {
    format!(
        "log4j.rootLogger=INFO, F\n\
         log4j.appender.F=org.apache.log4j.FileAppender\n\
         log4j.appender.F.File={}\n\
         log4j.appender.F.layout=org.apache.log4j.PatternLayout\n\
         log4j.appender.F.layout.ConversionPattern=%d{{yyyy-MM-dd HH:mm:ss,SSS}} - %-5p [%t:%C{{1}}@%L] - %m%n\n",
        log_file.display()
    )
}

/// Writes `node_dir/log4j.properties` (see [`log4j_properties`]), next to the node's zoo.cfg.
pub fn write_log4j(node_dir: &Path, log_file: &Path) -> std::io::Result<()> {
    std::fs::write(node_dir.join("log4j.properties"), log4j_properties(log_file))
}

/// `java … QuorumPeerMain node_dir/zoo.cfg`, logging as `node_dir/log4j.properties` says.
/// `jvm_options` (heap size, system properties) go before the main class. Stdin is closed; the
/// caller decides where stdout and stderr go.
pub fn server_command(node_dir: &Path, jvm_options: &[String]) -> Command {
    let mut cmd = Command::new("java");
    cmd.args(jvm_options)
        .arg("-cp")
        .arg(CLASSPATH.join(":"))
        .arg(format!("-Dlog4j.configuration=file:{}", node_dir.join("log4j.properties").display()))
        .arg("-Djava.net.preferIPv4Stack=true")
        .arg(MAIN_CLASS)
        .arg(node_dir.join("zoo.cfg"))
        .stdin(Stdio::null());
    cmd
}
