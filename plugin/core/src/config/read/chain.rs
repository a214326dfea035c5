//! Readers for the `chain` and `releases` sections and a route's `requires`.
use super::*;

#[inline(never)]
pub(super) fn chain(value: &Value, path: &Path<'_>) -> Result<Chain> {
    let mut c = Chain {
        keys: Vec::new(),
        ttl: default_ttl(),
        max_token_bytes: default_max_token_bytes(),
        revision: None,
        accept_revisions: Vec::new(),
    };
    let names = [
        "keys",
        "ttl",
        "max_token_bytes",
        "revision",
        "accept_revisions",
    ];
    fields(value, path, "struct Chain", &names, &mut |i, v, p| {
        match i {
            0 => c.keys = list(v, p, chain_key)?,
            1 => c.ttl = string(v, p)?,
            2 => c.max_token_bytes = u64(v, p)?,
            3 => c.revision = opt(v, p, string)?,
            _ => c.accept_revisions = list(v, p, string)?,
        }
        Ok(())
    })?;
    Ok(c)
}

#[inline(never)]
fn chain_key(value: &Value, path: &Path<'_>) -> Result<ChainKey> {
    let mut id = None;
    let mut k = ChainKey {
        id: String::new(),
        secret: None,
        env: None,
    };
    let names = ["id", "secret", "env"];
    fields(value, path, "struct ChainKey", &names, &mut |i, v, p| {
        match i {
            0 => id = Some(string(v, p)?),
            1 => k.secret = opt(v, p, string)?,
            _ => k.env = opt(v, p, string)?,
        }
        Ok(())
    })?;
    k.id = required(id, path, "id")?;
    Ok(k)
}

#[inline(never)]
pub(super) fn release(value: &Value, path: &Path<'_>) -> Result<Release> {
    let mut routes = None;
    let mut r = Release {
        routes: Named::default(),
        weight: 0.0,
        start: None,
        steps: Vec::new(),
        pins: Vec::new(),
        bucket_by: None,
        salt: None,
    };
    let names = [
        "routes",
        "weight",
        "start",
        "steps",
        "pins",
        "bucket_by",
        "salt",
    ];
    fields(value, path, "struct Release", &names, &mut |i, v, p| {
        match i {
            0 => routes = Some(named(v, p, string)?),
            1 => r.weight = float(v, p)?,
            2 => r.start = opt(v, p, string)?,
            3 => r.steps = list(v, p, step)?,
            4 => r.pins = list(v, p, release_pin)?,
            5 => r.bucket_by = opt(v, p, bucket_by)?,
            _ => r.salt = opt(v, p, string)?,
        }
        Ok(())
    })?;
    r.routes = required(routes, path, "routes")?;
    Ok(r)
}

#[inline(never)]
fn release_pin(value: &Value, path: &Path<'_>) -> Result<ReleasePin> {
    let (mut when, mut member) = (None, None);
    let names = ["when", "in"];
    fields(value, path, "struct ReleasePin", &names, &mut |i, v, p| {
        match i {
            0 => when = Some(condition(v, p)?),
            _ => member = Some(boolean(v, p)?),
        }
        Ok(())
    })?;
    Ok(ReleasePin {
        when: required(when, path, "when")?,
        member: required(member, path, "in")?,
    })
}

#[inline(never)]
pub(super) fn requirement(value: &Value, path: &Path<'_>) -> Result<Requirement> {
    let mut r = Requirement {
        route: None,
        version: None,
        flag: None,
        variant: None,
    };
    let names = ["route", "version", "flag", "variant"];
    fields(value, path, "struct Requirement", &names, &mut |i, v, p| {
        match i {
            0 => r.route = opt(v, p, string)?,
            1 => r.version = opt(v, p, string)?,
            2 => r.flag = opt(v, p, string)?,
            _ => r.variant = opt(v, p, string)?,
        }
        Ok(())
    })?;
    Ok(r)
}
