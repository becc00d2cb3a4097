//! A clustered site's configuration as the daemon uses it: the cluster
//! definition (mcdinfo and the local records) and the central database
//! (`host.cntrl`).

use super::cluster::ClusterDefinition;
use super::control::{read_first_line, Paths};
use super::env::{nonempty, nonempty_os, parse_decimal, Env};
use super::mysql::env_ident;
use super::{ConfigError, MysqlConfig};

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
    let port = match nonempty(env, "CNTRL_VPORT")? {
        None => 0,
        Some(v) => parse_decimal(v)
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| ConfigError::invalid_var("CNTRL_VPORT", v, "a port number 0..=65535"))?,
    };
    let defaults = MysqlConfig {
        host: "localhost".to_string(),
        user: env.get_str("CNTRL_USER")?.unwrap_or("indimail").to_string(),
        password: env
            .get_str("CNTRL_PASSWD")?
            .unwrap_or("ssh-1.5-")
            .to_string(),
        socket: nonempty_os(env, "CNTRL_SOCKET").map(Into::into),
        port,
        ssl: false,
        database: env_ident(env, "CNTRL_DATABASE", "indimail", "database")?,
        source: "default".to_string(),
        ..local.clone()
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
