//! A clustered site's configuration as the daemon uses it: the cluster
//! definition (mcdinfo and the local records) and the central database
//! (`host.cntrl`).

use super::cluster::ClusterDefinition;
use super::control::{read_first_line, Paths};
use super::env::{nonempty, Env};
use super::mysql::{env_ident, Account};
use super::{ConfigError, MysqlConfig, OptionFile};

/// A clustered site: its records and where its central database is.
#[derive(Debug, Clone)]
pub struct ClusterSite {
    pub definition: ClusterDefinition,
    /// The central database: the first line of `control/host.cntrl`, else
    /// env CNTRL_HOST, else `localhost` (as C), with CNTRL_USER [indimail],
    /// CNTRL_PASSWD [ssh-1.5-], CNTRL_SOCKET, CNTRL_VPORT [0] and
    /// CNTRL_DATABASE [indimail] for the fields the line leaves out.
    pub central: Option<MysqlConfig>,
    /// The user → mailstore table (CNTRL_TABLE [hostcntrl]).
    pub cntrl_table: String,
}

impl ClusterSite {
    /// `None` when the site is not clustered (no mcdinfo with records).
    pub fn load(
        env: &Env,
        paths: &Paths,
        local: &MysqlConfig,
    ) -> Result<Option<ClusterSite>, ConfigError> {
        let Some(definition) = ClusterDefinition::load(env, paths, local)? else {
            return Ok(None);
        };
        Ok(Some(ClusterSite {
            definition,
            central: Some(central_host_line(env, paths, local)?),
            cntrl_table: env_ident(env, "CNTRL_TABLE", "hostcntrl", "table")?,
        }))
    }
}

/// The central database's host line and defaults.
fn central_host_line(
    env: &Env,
    paths: &Paths,
    local: &MysqlConfig,
) -> Result<MysqlConfig, ConfigError> {
    let account = Account::load(
        env,
        [
            "CNTRL_USER",
            "CNTRL_PASSWD",
            "CNTRL_SOCKET",
            "CNTRL_VPORT",
            "CNTRL_DATABASE",
        ],
    )?;
    let defaults = MysqlConfig {
        source: "default".to_string(),
        ..account.defaults_over(local.clone())
    };
    let path = paths.control_file("host.cntrl");
    match read_first_line(&path)? {
        Some(line) if !line.is_empty() => {
            let line = String::from_utf8(line)
                .map_err(|_| ConfigError::file(&path, "first line is not valid UTF-8"))?;
            let defaults = MysqlConfig {
                source: path.display().to_string(),
                ..defaults
            };
            MysqlConfig::parse_host_line(&line, defaults)
        }
        Some(_) => Err(ConfigError::file(&path, "incomplete line")),
        None => match nonempty(env, "CNTRL_HOST")? {
            Some(line) => MysqlConfig::parse_host_line(
                line,
                MysqlConfig {
                    source: "CNTRL_HOST".to_string(),
                    ..defaults
                },
            ),
            None => Ok(defaults),
        },
    }
}

/// What the MySQL option file adds to a connection, as libmariadb applies it:
/// the file is read when connecting, after the options set from the
/// environment, so its connect timeout wins; the connect arguments win over
/// the file where they are given, so the file supplies only the port (when
/// the line gives none) and the socket (for `localhost` without a socket or
/// port of its own).
pub fn fill_from_option_file(m: &mut MysqlConfig, file: &OptionFile) {
    let local = m.host.is_empty() || m.host == "localhost";
    if m.socket.is_none() && m.port == 0 && local {
        m.socket = file.socket.clone();
    }
    if m.port == 0 {
        if let Some(port) = file.port {
            m.port = port;
        }
    }
    if let Some(t) = file.connect_timeout {
        m.connect_timeout = t;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::{Path, PathBuf};
    use std::time::Duration;

    fn line(l: &str) -> MysqlConfig {
        let defaults =
            MysqlConfig::parse_host_line("localhost", crate::config::test_support::host_defaults())
                .unwrap();
        MysqlConfig::parse_host_line(l, defaults).unwrap()
    }

    #[test]
    fn the_option_file_fills_what_the_line_leaves_out() {
        let file = OptionFile::parse(
            b"[client]\nsocket=/run/db.sock\nport=3307\nconnect-timeout=3\n",
            Path::new("indimail.cnf"),
            "indimail",
        )
        .unwrap();
        let mut m = line("localhost:u:p");
        fill_from_option_file(&mut m, &file);
        assert_eq!(m.socket, Some(PathBuf::from("/run/db.sock")));
        assert_eq!(m.port, 3307);
        assert_eq!(m.connect_timeout, Duration::from_secs(3));
        // The line's own port and socket win; a remote host takes no socket.
        let mut m = line("localhost:u:p:3310");
        fill_from_option_file(&mut m, &file);
        assert_eq!((m.socket.clone(), m.port), (None, 3310));
        let mut m = line("db.example:u:p");
        fill_from_option_file(&mut m, &file);
        assert_eq!((m.socket.clone(), m.port), (None, 3307));
        let mut m = line("localhost:u:p:/tmp/s.sock");
        fill_from_option_file(&mut m, &file);
        assert_eq!(m.socket, Some(PathBuf::from("/tmp/s.sock")));
    }
}
