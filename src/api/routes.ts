/** API role: the tenant-scoped read/manage routes of devices, rules and alerts (declared in their files). */
import { alertRoutes, type AlertDeps } from "./alerts.ts";
import { deviceAdminRoutes, type DeviceAdminDeps } from "./device-admin.ts";
import { deviceKeyRoutes, type DeviceKeyDeps } from "./device-keys.ts";
import { deviceRoutes, type DeviceDeps } from "./devices.ts";
import { exportRoutes, type ExportDeps } from "./export.ts";
import { ruleRoutes, type RuleDeps } from "./rules.ts";
import { trackRoutes } from "./track.ts";

export type ApiDeps = DeviceDeps & DeviceAdminDeps & DeviceKeyDeps & RuleDeps & AlertDeps & ExportDeps;

export const apiRoutes = [
  ...deviceRoutes,
  ...exportRoutes,
  ...trackRoutes,
  ...deviceAdminRoutes,
  ...deviceKeyRoutes,
  ...ruleRoutes,
  ...alertRoutes,
];
