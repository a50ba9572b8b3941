//! A KVM internal-error sub-error (`KVM_EXIT_INTERNAL_ERROR`'s `suberror`): its name and meaning, from Linux's `include/uapi/linux/kvm.h`.

use serde::Serialize;

/// A KVM internal-error sub-error.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Suberror {
    /// The number qemu prints after `Suberror:`.
    pub number: u32,
    /// The uapi constant, e.g. `KVM_INTERNAL_ERROR_EMULATION`.
    pub name: &'static str,
    /// What it means, e.g. "KVM's instruction emulator failed".
    pub meaning: &'static str,
}

/// The sub-error `n` of `KVM_EXIT_INTERNAL_ERROR`, if Linux defines it.
pub fn suberror(n: u32) -> Option<Suberror> {
    let (name, meaning) = match n {
        1 => (
            "KVM_INTERNAL_ERROR_EMULATION",
            "KVM's instruction emulator failed",
        ),
        2 => (
            "KVM_INTERNAL_ERROR_SIMUL_EX",
            "an exception occurred while another event was being delivered (unexpected simultaneous exceptions)",
        ),
        3 => (
            "KVM_INTERNAL_ERROR_DELIVERY_EV",
            "a VM exit KVM cannot handle happened while an event (interrupt or exception) was being delivered",
        ),
        4 => (
            "KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON",
            "the hardware reported a VM-exit reason KVM does not handle",
        ),
        _ => return None,
    };
    Some(Suberror {
        number: n,
        name,
        meaning,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suberrors() {
        let s = suberror(1).unwrap();
        assert_eq!(s.name, "KVM_INTERNAL_ERROR_EMULATION");
        assert_eq!(s.meaning, "KVM's instruction emulator failed");
        assert_eq!(suberror(3).unwrap().name, "KVM_INTERNAL_ERROR_DELIVERY_EV");
        assert_eq!(
            suberror(4).unwrap().name,
            "KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON"
        );
        assert!(suberror(0).is_none());
        assert!(suberror(5).is_none());
    }
}
