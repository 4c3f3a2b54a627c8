/** Loaded before every test file (bunfig.toml): quiet logs; the shared PostgreSQL stopped and the built executable removed after the last file. */
import { afterAll } from "bun:test";
import { configureLogger } from "../../src/lib/log.ts";
import { removeBuiltExecutable } from "./executable.ts";
import { stopSharedServices } from "./services.ts";

configureLogger(process.env.TEST_LOG_LEVEL ?? "warn", true);
afterAll(stopSharedServices);
afterAll(removeBuiltExecutable);
