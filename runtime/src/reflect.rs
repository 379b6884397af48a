//! Debug builds check every recorded dispatch against its WGSL entry point by naga
//! reflection: each storage binding the Rust side gives must exist with the same access
//! (read or read-write), every binding the entry point uses must be given, and the
//! `Params` struct must sit at the uniform's slot with the WGSL struct's size. The whole
//! test suite, on every backend, runs through this check.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use edge4d_shaders::Shader;

use crate::gpu::Access;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Slot {
    Storage { writable: bool },
    Uniform { bytes: u32 },
}

struct Reflected {
    slots: HashMap<u32, Slot>,
    /// The slots each entry point uses.
    used: HashMap<String, Vec<u32>>,
}

fn reflect(shader: &Shader) -> Result<Reflected, String> {
    let module =
        naga::front::wgsl::parse_str(shader.source).map_err(|e| format!("{}: {e}", shader.path))?;
    let info = naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .map_err(|e| format!("{}: {e}", shader.path))?;
    let mut slots = HashMap::new();
    for (_, var) in module.global_variables.iter() {
        let Some(binding) = &var.binding else {
            continue;
        };
        let slot = match var.space {
            naga::AddressSpace::Storage { access } => Slot::Storage {
                writable: access.contains(naga::StorageAccess::STORE),
            },
            naga::AddressSpace::Uniform => Slot::Uniform {
                bytes: module.types[var.ty].inner.size(module.to_ctx()),
            },
            _ => continue,
        };
        slots.insert(binding.binding, slot);
    }
    let mut used = HashMap::new();
    for (i, ep) in module.entry_points.iter().enumerate() {
        let fi = info.get_entry_point(i);
        let slots_used = module
            .global_variables
            .iter()
            .filter(|(h, _)| !fi[*h].is_empty())
            .filter_map(|(_, v)| v.binding.as_ref().map(|b| b.binding))
            .collect();
        used.insert(ep.name.clone(), slots_used);
    }
    Ok(Reflected { slots, used })
}

fn reflected(shader: &Shader) -> Result<Arc<Reflected>, String> {
    static CACHE: OnceLock<Mutex<HashMap<&'static str, Arc<Reflected>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(r) = cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .get(shader.path)
    {
        return Ok(r.clone());
    }
    let r = Arc::new(reflect(shader)?);
    cache
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(shader.path, r.clone());
    Ok(r)
}

/// Checks one dispatch's bindings and uniform against the WGSL; the error names the
/// kernel and what differs.
pub(crate) fn check(
    shader: &Shader,
    entry: &str,
    binds: &[(u32, Access)],
    uniform_slot: u32,
    uniform_bytes: usize,
) -> Result<(), String> {
    let r = reflected(shader)?;
    let name = format!("{}::{entry}", shader.path);
    let used = r
        .used
        .get(entry)
        .ok_or_else(|| format!("{name}: no such entry point"))?;
    for &(slot, access) in binds {
        match r.slots.get(&slot) {
            Some(Slot::Storage { writable }) => {
                if *writable != (access == Access::ReadWrite) {
                    return Err(format!(
                        "{name}: binding {slot} is {} in WGSL but bound {:?}",
                        if *writable { "read_write" } else { "read" },
                        access
                    ));
                }
            }
            other => {
                return Err(format!(
                    "{name}: binding {slot} is bound as storage but WGSL has {other:?}"
                ))
            }
        }
    }
    match r.slots.get(&uniform_slot) {
        Some(Slot::Uniform { bytes }) if *bytes as usize == uniform_bytes => {}
        other => {
            return Err(format!(
                "{name}: uniform of {uniform_bytes} bytes at binding {uniform_slot}, WGSL has {other:?}"
            ))
        }
    }
    for slot in used {
        if *slot != uniform_slot && !binds.iter().any(|(s, _)| s == slot) {
            return Err(format!("{name}: uses binding {slot}, which is not bound"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::check;
    use crate::gpu::Access::{Read, ReadWrite};
    use edge4d_shaders::elementwise::BINARY;

    #[test]
    fn reflection_accepts_the_real_layout_and_names_each_mismatch() {
        let ok = [(0, Read), (1, Read), (2, ReadWrite)];
        check(&BINARY, "add", &ok, 3, 16).unwrap();
        let e = check(&BINARY, "add", &[(0, Read), (1, Read), (2, Read)], 3, 16).unwrap_err();
        assert!(e.contains("binding 2 is read_write"), "{e}");
        let e = check(&BINARY, "add", &ok, 3, 32).unwrap_err();
        assert!(e.contains("uniform of 32 bytes"), "{e}");
        let e = check(&BINARY, "add", &ok[..2], 3, 16).unwrap_err();
        assert!(e.contains("uses binding 2"), "{e}");
        let e = check(&BINARY, "sub", &ok, 3, 16).unwrap_err();
        assert!(e.contains("no such entry point"), "{e}");
    }
}
