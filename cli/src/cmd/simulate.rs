pub fn run(_a: Vec<std::ffi::OsString>) -> anyhow::Result<Option<crate::common::Report>> { Ok(None) }
