//! Compiles what rollouts across services need: releases (several routes'
//! versions as one cohort), version requirements, and the signing keys of the
//! decision token. Requirements are checked here for names that do not exist
//! and for contradictions, so a user can always be given a consistent set.
use super::conditions::Conditions;
use super::flags::key_plan;
use super::routes::weight_schedule;
use super::{text, ConfigError};
use crate::config::{Chain, ChainKey, Config, Release};
use crate::plan::{
    ChainPlan, Cond, FlagPlan, ReleasePlan, Requirement, RoutePlan, Strategy, TokenPlan,
};
use crate::token::revision_of;
use sluice_primitives::sha256::HmacKey;

/// The decision token's baggage member, under the baggage prefix.
pub(crate) const TOKEN_MEMBER: &str = "token";

/// Secrets shorter than this are refused: an HMAC key is only as strong as it.
const MIN_SECRET_BYTES: usize = 32;

#[inline(never)]
pub(crate) fn compile_chain<'c>(
    config: &'c Config,
    routes: &[RoutePlan],
    flags: &[FlagPlan],
    baggage_prefix: Option<&str>,
    conditions: &mut Conditions<'c>,
) -> Result<ChainPlan, ConfigError> {
    let (releases, route_release) = compile_releases(config, routes, conditions)?;
    let requires = compile_requires(config, routes, flags)?;
    let mut plan = ChainPlan {
        releases,
        route_release,
        requires,
        ..ChainPlan::default()
    };
    check_requirements_agree(&plan, routes, flags)?;

    if let Some(chain) = &config.chain {
        let Some(prefix) = baggage_prefix else {
            return Err(ConfigError::new(
                "chain",
                "decisions travel in baggage: set outputs.baggage too",
            ));
        };
        plan.token = Some(token_plan(chain, config, prefix)?);
    }
    plan.has_requirements = plan.requires.iter().any(|r| !r.is_empty());
    plan.decide_all_routes =
        plan.token.is_some() || !plan.releases.is_empty() || plan.has_requirements;
    Ok(plan)
}

/// The releases, and per route the release it is in with the version it brings.
#[inline(never)]
fn compile_releases<'c>(
    config: &'c Config,
    routes: &[RoutePlan],
    conditions: &mut Conditions<'c>,
) -> Result<ReleasesAndRoutes, ConfigError> {
    let mut releases = Vec::with_capacity(config.releases.len());
    let mut route_release = vec![None; routes.len()];
    for (name, release) in config.releases.iter() {
        let id = releases.len();
        releases.push(compile_release(
            config,
            name,
            release,
            routes,
            id,
            &mut route_release,
            conditions,
        )?);
    }
    Ok((releases, route_release))
}

/// `ChainPlan::releases` and `ChainPlan::route_release`.
type ReleasesAndRoutes = (Vec<ReleasePlan>, Vec<Option<(usize, usize)>>);

/// Release `id`: its members (noted in `route_release`, per route), schedule, pins and key.
#[inline(never)]
fn compile_release<'c>(
    config: &Config,
    name: &str,
    release: &'c Release,
    routes: &[RoutePlan],
    id: usize,
    route_release: &mut [Option<(usize, usize)>],
    conditions: &mut Conditions<'c>,
) -> Result<ReleasePlan, ConfigError> {
    let path = format!("releases.{name}");
    text::check_name(name, &path, "release name")?;
    if release.routes.is_empty() {
        return Err(ConfigError::new(
            format!("{path}.routes"),
            "no routes; a release names the routes it moves and their new versions",
        ));
    }
    let mut members = Vec::new();
    for (route_name, version) in release.routes.iter() {
        let at = format!("{path}.routes.{route_name}");
        let (r, v) = release_member(
            config,
            name,
            route_name,
            version,
            routes,
            route_release,
            &at,
        )?;
        route_release[r] = Some((id, v));
        members.push((r, v));
    }
    let schedule = weight_schedule(
        release.weight,
        release.start.as_deref(),
        &release.steps,
        &path,
    )?;
    let pins = release_pins(release, &path, conditions)?;
    let salt = release.salt.clone().unwrap_or_else(|| name.to_string());
    Ok(ReleasePlan {
        name: name.to_string(),
        members,
        key: key_plan(salt, release.bucket_by, None, config),
        schedule,
        pins,
    })
}

/// The release's pins: a condition and the member it pins matching requests to.
#[inline(never)]
fn release_pins<'c>(
    release: &'c Release,
    path: &str,
    conditions: &mut Conditions<'c>,
) -> Result<Vec<(Cond, bool)>, ConfigError> {
    let mut pins = Vec::with_capacity(release.pins.len());
    for (i, pin) in release.pins.iter().enumerate() {
        let cond = conditions.compile(&pin.when, &format!("{path}.pins[{i}].when"))?;
        pins.push((cond, pin.member));
    }
    Ok(pins)
}

/// One route a release moves, at `at`: the route's index and the version (its canary), checked
/// against the releases before (`route_release`).
#[inline(never)]
fn release_member(
    config: &Config,
    release: &str,
    route_name: &str,
    version: &str,
    routes: &[RoutePlan],
    route_release: &[Option<(usize, usize)>],
    at: &str,
) -> Result<(usize, usize), ConfigError> {
    let r = route_index(routes, route_name, at)?;
    let route = &routes[r];
    let v = version_of(route, version, at)?;
    let Strategy::Progressive { target, .. } = route.strategy else {
        return Err(ConfigError::new(
            at,
            format!("route `{route_name}` has no canary; a release moves canaries"),
        ));
    };
    if v != target {
        return Err(ConfigError::new(
            at,
            format!(
                "`{version}` is not route `{route_name}`'s canary (`{}`)",
                route.versions[target]
            ),
        ));
    }
    if let Some((other, _)) = route_release[r] {
        return Err(ConfigError::new(
            at,
            format!(
                "route `{route_name}` is already in release `{}`",
                config.releases.iter().nth(other).map_or("", |(n, _)| n)
            ),
        ));
    }
    if !route.pins.is_empty() {
        return Err(ConfigError::new(
            format!("routes.{route_name}.pins"),
            format!("route `{route_name}` is in release `{release}`: pin the release instead, so its routes move together"),
        ));
    }
    Ok((r, v))
}

/// `ChainPlan::requires`: per route, `(version, what it requires)`.
type Requires = Vec<Vec<(usize, Vec<Requirement>)>>;

/// Per route, its versions' requirements (`routes.<route>.requires`).
#[inline(never)]
fn compile_requires(
    config: &Config,
    routes: &[RoutePlan],
    flags: &[FlagPlan],
) -> Result<Requires, ConfigError> {
    let mut requires = vec![Vec::new(); routes.len()];
    for (r, (route_name, route)) in config.routes.iter().enumerate() {
        for (version, needs) in route.requires.iter() {
            let path = format!("routes.{route_name}.requires.{version}");
            requires[r].push(version_requires(r, version, needs, &path, routes, flags)?);
        }
    }
    Ok(requires)
}

/// The requirements of route `r`'s version `version` (at `path`): the version's index, and
/// each need compiled.
#[inline(never)]
fn version_requires(
    r: usize,
    version: &str,
    needs: &[crate::config::Requirement],
    path: &str,
    routes: &[RoutePlan],
    flags: &[FlagPlan],
) -> Result<(usize, Vec<Requirement>), ConfigError> {
    let v = version_of(&routes[r], version, path)?;
    if v == routes[r].strategy.fallback() {
        return Err(ConfigError::new(
            path,
            format!(
                "`{version}` is where users go when requirements fail; it cannot have requirements"
            ),
        ));
    }
    let mut list = Vec::with_capacity(needs.len());
    for (i, need) in needs.iter().enumerate() {
        let at = format!("{path}[{i}]");
        list.push(compile_need(need, &at, r, routes, flags)?);
    }
    Ok((v, list))
}

#[inline(never)]
fn route_index(routes: &[RoutePlan], name: &str, at: &str) -> Result<usize, ConfigError> {
    routes
        .iter()
        .position(|r| r.name == name)
        .ok_or_else(|| ConfigError::new(at, format!("unknown route `{name}`")))
}

#[inline(never)]
fn version_of(route: &RoutePlan, version: &str, at: &str) -> Result<usize, ConfigError> {
    route
        .versions
        .iter()
        .position(|v| v == version)
        .ok_or_else(|| {
            ConfigError::new(
                at,
                format!(
                    "route `{}` has no version `{version}` (versions: {})",
                    route.name,
                    route.versions.join(", ")
                ),
            )
        })
}

/// One requirement of route `r`'s version: another route's version, or a flag's variant.
#[inline(never)]
fn compile_need(
    need: &crate::config::Requirement,
    at: &str,
    r: usize,
    routes: &[RoutePlan],
    flags: &[FlagPlan],
) -> Result<Requirement, ConfigError> {
    Ok(
        match (&need.route, &need.version, &need.flag, &need.variant) {
            (Some(route), Some(version), None, None) => {
                let other = route_index(routes, route, &format!("{at}.route"))?;
                if other == r {
                    return Err(ConfigError::new(
                        format!("{at}.route"),
                        "a version cannot require its own route",
                    ));
                }
                let ov = version_of(&routes[other], version, &format!("{at}.version"))?;
                Requirement::Route(other, ov)
            }
            (None, None, Some(flag), Some(variant)) => {
                let f = flags.iter().position(|f| &f.name == flag).ok_or_else(|| {
                    ConfigError::new(format!("{at}.flag"), format!("unknown flag `{flag}`"))
                })?;
                let fv = flags[f]
                    .variant_names
                    .iter()
                    .position(|n| n == variant)
                    .ok_or_else(|| {
                        ConfigError::new(
                            format!("{at}.variant"),
                            format!("flag `{flag}` has no variant `{variant}`"),
                        )
                    })?;
                Requirement::Flag(f, fv)
            }
            _ => {
                return Err(ConfigError::new(
                    at,
                    "give either route and version, or flag and variant",
                ))
            }
        },
    )
}

/// Follows requirements from each `(route, version)`: if they lead to two
/// versions of one route (or two variants of one flag), no user can have
/// them all, and the config says which chain contradicts itself.
#[inline(never)]
fn check_requirements_agree(
    plan: &ChainPlan,
    routes: &[RoutePlan],
    flags: &[FlagPlan],
) -> Result<(), ConfigError> {
    for (r, versions) in plan.requires.iter().enumerate() {
        for (v, _) in versions {
            let mut route_at: Vec<Option<usize>> = vec![None; routes.len()];
            let mut flag_at: Vec<Option<usize>> = vec![None; flags.len()];
            route_at[r] = Some(*v);
            let mut pending = vec![(r, *v)];
            while let Some((pr, pv)) = pending.pop() {
                let Some((_, needs)) = plan.requires[pr].iter().find(|(x, _)| *x == pv) else {
                    continue;
                };
                for need in needs {
                    let clash = match *need {
                        Requirement::Route(nr, nv) => match route_at[nr] {
                            Some(have) if have != nv => Some(format!(
                                "route `{}` would need both `{}` and `{}`",
                                routes[nr].name, routes[nr].versions[have], routes[nr].versions[nv]
                            )),
                            Some(_) => None,
                            None => {
                                route_at[nr] = Some(nv);
                                pending.push((nr, nv));
                                None
                            }
                        },
                        Requirement::Flag(nf, nv) => match flag_at[nf] {
                            Some(have) if have != nv => Some(format!(
                                "flag `{}` would need both `{}` and `{}`",
                                flags[nf].name,
                                flags[nf].variant_names[have],
                                flags[nf].variant_names[nv]
                            )),
                            Some(_) => None,
                            None => {
                                flag_at[nf] = Some(nv);
                                None
                            }
                        },
                    };
                    if let Some(why) = clash {
                        return Err(ConfigError::new(
                            format!(
                                "routes.{}.requires.{}",
                                routes[r].name, routes[r].versions[*v]
                            ),
                            format!("contradictory requirements: {why}"),
                        ));
                    }
                }
            }
        }
    }
    Ok(())
}

#[inline(never)]
fn token_plan(chain: &Chain, config: &Config, prefix: &str) -> Result<TokenPlan, ConfigError> {
    if chain.keys.is_empty() {
        return Err(ConfigError::new(
            "chain.keys",
            "no keys; give at least one (the first signs, all verify)",
        ));
    }
    let keys = signing_keys(chain)?;
    let ttl_ms = text::duration_millis(&chain.ttl, &"chain.ttl")?;
    if !(1000..=86_400_000).contains(&ttl_ms) {
        return Err(ConfigError::new("chain.ttl", "must be between 1s and 24h"));
    }
    if !(64..=65_536).contains(&chain.max_token_bytes) {
        return Err(ConfigError::new(
            "chain.max_token_bytes",
            "must be between 64 and 65536",
        ));
    }
    let own = chain.revision.as_deref().or(config.revision.as_deref());
    let mut revisions = vec![revision_of(own.unwrap_or(""))];
    revisions.extend(chain.accept_revisions.iter().map(|r| revision_of(r)));
    Ok(TokenPlan {
        keys,
        ttl_s: (ttl_ms / 1000) as u32,
        max_bytes: chain.max_token_bytes as usize,
        revisions,
        member: format!("{prefix}{TOKEN_MEMBER}"),
    })
}

/// The decision token's keys, each with its id: the first signs, all verify.
#[inline(never)]
fn signing_keys(chain: &Chain) -> Result<Vec<(String, HmacKey)>, ConfigError> {
    let mut keys: Vec<(String, HmacKey)> = Vec::with_capacity(chain.keys.len());
    for (i, key) in chain.keys.iter().enumerate() {
        let at = format!("chain.keys[{i}]");
        text::check_name(&key.id, &format!("{at}.id"), "key id")?;
        if keys.iter().any(|(id, _)| id == &key.id) {
            return Err(ConfigError::new(
                format!("{at}.id"),
                format!("duplicate key id `{}`", key.id),
            ));
        }
        keys.push((key.id.clone(), signing_key(key, at)?));
    }
    Ok(keys)
}

/// One key's HMAC key, from its secret (given, or read from its `env` variable by `load`).
#[inline(never)]
fn signing_key(key: &ChainKey, at: String) -> Result<HmacKey, ConfigError> {
    let secret = match (&key.secret, &key.env) {
        (Some(secret), _) => secret,
        (None, Some(var)) => {
            return Err(ConfigError::new(
                format!("{at}.env"),
                format!("environment variable `{var}` is not set in the VM (Istio: WasmPlugin vmConfig.env)"),
            ))
        }
        (None, None) => {
            return Err(ConfigError::new(at, "give secret or env"));
        }
    };
    if secret.len() < MIN_SECRET_BYTES {
        return Err(ConfigError::new(
            at,
            format!(
                "secret has {} bytes; use at least {MIN_SECRET_BYTES} random bytes",
                secret.len()
            ),
        ));
    }
    Ok(HmacKey::new(secret.as_bytes()))
}
