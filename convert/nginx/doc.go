// Package nginx translates an nginx configuration into edgeproxy TOML
// (SPEC §2 `edgeproxy convert nginx`, keys of §3 and §8–§10).
//
// The package owns three things:
//
//   - a parser that reads nginx's grammar the way nginx does (same tokens,
//     same `include` resolution, same line numbers in errors), so a config
//     nginx rejects is reported at the line nginx names;
//   - the directive table (rules.go): every directive the converter knows,
//     with the function that carries it over or the reason it is not;
//   - the walk that applies the table to http/server/location blocks and
//     writes the routes, upstreams and server settings.
//
// Rules a caller keeps: Convert never guesses. A directive whose meaning
// edgeproxy cannot express with the keys the config package accepts right
// now is reported as blocking and left out; what the config accepts is
// probed at run time (caps.go), so a directive starts being carried over
// the day its key lands in config/, without an edit here.
package nginx
