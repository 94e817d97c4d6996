//! `nsboot list [--format table|json] [--quiet]`: every container in the state root.

use crate::cli::Global;
use crate::state::lifecycle;

// List the containers in the state root.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Output format.
    #[arg(long, short = 'f', value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Print the ids only.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Table,
    Json,
}

pub fn run(args: ListArgs, global: &Global) -> i32 {
    let root = match crate::state::root_dir(global.root.as_deref()) {
        Ok(r) => r,
        Err(e) => return crate::sys::log::fail(&e),
    };
    // Runs killed together with their supervisor are gone: never listed.
    crate::state::sweep(&root, "");
    let ids = match crate::state::list(&root) {
        Ok(ids) => ids,
        Err(e) => {
            crate::sys::log::fatal(&e.to_string());
            return 125;
        }
    };
    // A container deleted between the listing and the read is simply not listed.
    let containers: Vec<_> = ids
        .iter()
        .filter_map(|id| lifecycle::load(&root, id).ok())
        .collect();
    if args.quiet {
        for c in &containers {
            crate::state::lifecycle::out!("{}", c.state.id);
        }
        return 0;
    }
    match args.format {
        Format::Json => {
            let all: Vec<_> = containers.iter().map(|c| c.oci_state()).collect();
            crate::state::lifecycle::out!("{}", serde_json::Value::Array(all));
        }
        Format::Table => {
            let rows: Vec<[String; 6]> = containers
                .iter()
                .map(|c| {
                    let st = c.oci_state();
                    let field = |k: &str| {
                        st[k]
                            .as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| st[k].to_string())
                    };
                    [
                        field("id"),
                        field("pid"),
                        field("status"),
                        field("bundle"),
                        field("created"),
                        field("owner"),
                    ]
                })
                .collect();
            crate::state::lifecycle::out_raw!(
                "{}",
                table(
                    &["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"],
                    &rows
                )
            );
        }
    }
    0
}

/// Left-aligned columns, two spaces apart.
fn table<const N: usize>(header: &[&str; N], rows: &[[String; N]]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, cell) in width.iter_mut().zip(r) {
            *w = (*w).max(cell.len());
        }
    }
    let line = |cells: Vec<&str>| {
        let padded: Vec<String> = cells
            .iter()
            .zip(&width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_aligns_columns() {
        let rows = [["abc".to_string(), "1".to_string()]];
        assert_eq!(super::table(&["ID", "PID"], &rows), "ID   PID\nabc  1\n");
    }
}
