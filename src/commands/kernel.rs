//! Opening a dump and its analysis session; the kernel pieces a command cannot do without,
//! as exit-class-7 errors when they are missing.

use std::path::Path;

use coroner_analyze::{KernelView, Session, SessionOptions, Unavailable};
use coroner_formats::Core;

use crate::exit::{classified, ClassifyExt, ExitClass};

/// Opens `path` as a dump: a file, or an object (`s3://BUCKET/KEY`).
pub fn open(path: &Path) -> anyhow::Result<Core> {
    if let Some(url) = coroner_objstore::object_url_of(path) {
        return super::object_input::open(url);
    }
    coroner_formats::open(path).classify(ExitClass::Input, || {
        format!("cannot read {}", path.display())
    })
}

/// The analysis session over `core`.
pub fn session(core: &Core, ignore_vmcoreinfo: bool) -> Session<'_> {
    Session::new(
        core,
        SessionOptions {
            ignore_vmcoreinfo,
            hung_after_secs: None,
        },
    )
}

/// The kernel view of the session's dump, or an error saying why there is none.
pub fn view<'s, 'a>(session: &'s Session<'a>) -> anyhow::Result<&'s KernelView<'a>> {
    session.view().map_err(|e| {
        classified(
            e.clone(),
            ExitClass::NotFound,
            format!("no Linux kernel found in {}", session.core().path.display()),
        )
    })
}

/// A piece of the kernel that is missing, as an error that says what was being done.
pub fn missing<E>(why: Unavailable<'_, E>, doing: String) -> anyhow::Error
where
    E: std::error::Error + Clone + Send + Sync + 'static,
{
    match why {
        Unavailable::NoKernel(e) => classified(e.clone(), ExitClass::NotFound, doing),
        Unavailable::Failed(e) => classified(e.clone(), ExitClass::NotFound, doing),
    }
}
