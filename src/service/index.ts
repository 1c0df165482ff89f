/** The service-recovery toolkit: unit and supervisord generation, doctor, tune, graceful shutdown. */
export { nethealUnit, serviceUnit, configNeeds, quoteExecArg, checkUnitName, NETHEAL_UNIT_NAME, LEFTOVER_STATES, ORPHAN_STATES } from './unit';
export type { NethealUnitOptions, ServiceUnitOptions, ConfigNeeds, CapabilityNeed } from './unit';
export { supervisorSection } from './supervisor';
export type { SupervisorOptions } from './supervisor';
export { installUnit, uninstallUnit, unitDirectory, checkRoot } from './install';
export type { InstallOptions, UninstallOptions, InstallReport, InstallStep } from './install';
export { systemdVersion, parseSystemdVersion } from './systemd';
export { runDoctor, judgeSysctls, capabilitiesOf, TUNABLES, DOCTOR_SYSCTLS } from './doctor';
export type { DoctorOptions, DoctorReport, Finding, Severity, TunableRule } from './doctor';
export { tune, checkTunable, renderTuneFile, DEFAULT_TUNE_FILE } from './tune';
export type { TuneOptions, TuneReport, TuneSetting } from './tune';
export { listenReusePort, gracefulShutdown } from './graceful';
export type { ReusePortOptions, GracefulShutdownOptions, GracefulShutdown, ShutdownReport } from './graceful';
