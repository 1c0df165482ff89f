/**
 * Intent: what the interface's owner says should be true. netheal heals toward it and never
 * against it. The owner is asked (src/actions/intent.ts queries ifupdown, NetworkManager and
 * systemd-networkd through their own tools); where nothing manages an interface, netheal's
 * own configuration and the operator's maintenance hold speak for it. Pure types.
 */

/** Who owns an interface's configuration. `netheal` when no manager does. */
export type IntentOwner = 'systemd-networkd' | 'NetworkManager' | 'ifupdown' | 'network-scripts' | 'netheal';

/** Every {@link IntentOwner}. */
export const INTENT_OWNERS: readonly IntentOwner[] = Object.freeze(
  ['systemd-networkd', 'NetworkManager', 'ifupdown', 'network-scripts', 'netheal'] as IntentOwner[]);

/** Owners that run as daemons holding the configuration: they are asked to re-apply it. */
export const DAEMON_OWNERS: readonly IntentOwner[] = Object.freeze(['systemd-networkd', 'NetworkManager'] as IntentOwner[]);

/** An owner's word about one interface. */
export interface Intent {
  owner: IntentOwner;
  /**
   * true: the owner wants it up (an admin-down is a fault to heal); false: the owner took it
   * down on purpose (`ifdown`, `nmcli device disconnect`, ...), respected; null: unknown.
   */
  wantUp: boolean | null;
  /** How it was learnt, for logs and status (e.g. `ifquery --state`). */
  source: string;
}
