/** Prints the configuration table of docs/configuration.md from the settings table (a test keeps them in sync). */
import { SETTINGS } from "../src/config/schema.ts";

export function configTable(): string {
  const rows = Object.values(SETTINGS).map((s) => {
    const dflt = s.default === "" ? "(empty)" : `\`${s.default}\``;
    return `| \`${s.env}\` | \`--${s.flag}\` | ${dflt} | ${s.doc}${"secret" in s && s.secret ? " (secret: never logged)" : ""} |`;
  });
  return ["| Environment | Flag | Default | Meaning |", "| --- | --- | --- | --- |", ...rows].join("\n");
}

if (import.meta.main) console.log(configTable());
