package settings

import "github.com/sluicegw/sluice/pkg/validation"

// crossChecks are the rules between fields of different sections: each
// names the field to change and the one it is measured against.
func (c *Config) crossChecks(errs *validation.Errors) {
	p, lim := c.Proxy, c.Limits.WithDefaults()
	// The idle timeout of an upgraded connection can never fire past its
	// maximum lifetime.
	if p.UpgradeIdleTimeout > 0 && p.UpgradeMaxLifetime > 0 && p.UpgradeIdleTimeout > p.UpgradeMaxLifetime {
		errs.Add("proxy.upgrade_idle_timeout", "%v exceeds proxy.upgrade_max_lifetime (%v): it could never fire",
			p.UpgradeIdleTimeout, p.UpgradeMaxLifetime)
	}
	// A request waiting on the store longer than the whole drain could
	// never be answered before the node stops.
	if c.ShutdownTimeout > 0 && lim.Timeout >= c.ShutdownTimeout {
		errs.Add("shutdown_timeout", "%v is not above limits.timeout (%v): in-flight limit decisions could not finish during the drain",
			c.ShutdownTimeout, lim.Timeout)
	}
	if c.ShutdownTimeout > 0 && c.Auth.LookupTimeout >= c.ShutdownTimeout {
		errs.Add("shutdown_timeout", "%v is not above auth.lookup_timeout (%v): in-flight key lookups could not finish during the drain",
			c.ShutdownTimeout, c.Auth.LookupTimeout)
	}
}
