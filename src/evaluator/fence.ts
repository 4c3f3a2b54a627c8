/**
 * PostgreSQL fences of the evaluation partitions (decision 0550). A claim bumps the partition's
 * epoch; every outcome is written in a transaction that first locks the partition's row and checks
 * that the epoch is still the claimer's and that the event is newer than the last one written.
 * So an old holder that lost its lease cannot write after the new one claimed, and an event
 * redelivered after a handover is not evaluated into a second alert or a lost cooldown.
 */
import type { TransactionSql } from "postgres";
import type { Sql } from "../db/client.ts";

/** Where an outcome comes from: the partition row, the claim's epoch, the event's stream sequence. */
export interface Fence {
  name: string;
  epoch: number;
  seq: number;
  /**
   * PostgreSQL ends the transaction's session when it sits idle longer than this (a holder paused
   * or cut off mid-transaction), so its locks never hold up the next holder for long. Default 10 s.
   */
  idleMs?: number;
}

/** The partition was claimed by another holder since this one claimed it. */
export class FencedError extends Error {}

/**
 * Claims the partition for `holder`: returns the new epoch, and the last event sequence written.
 * A transaction of the previous holder may still hold the row (it ends within its idle limit):
 * waiting longer than lockWaitMs fails the claim, which the next lease round tries again.
 */
export async function claimPartition(
  sql: Sql,
  name: string,
  holder: string,
  lockWaitMs = 5_000,
): Promise<{ epoch: number; lastSeq: number }> {
  const [row] = await sql.begin(async (tx) => {
    await tx`SELECT set_config('lock_timeout', ${`${Math.max(1, Math.round(lockWaitMs))}ms`}, true)`;
    return tx`
      INSERT INTO evaluator_partitions (name, epoch, holder) VALUES (${name}, 1, ${holder})
      ON CONFLICT (name) DO UPDATE SET epoch = evaluator_partitions.epoch + 1, holder = EXCLUDED.holder, claimed_at = now()
      RETURNING epoch, last_seq`;
  });
  return { epoch: Number(row!.epoch), lastSeq: Number(row!.last_seq) };
}

/**
 * Inside the outcome's transaction: waits for the partition's row lock, then true when the outcome
 * should be written (and records the sequence), false when the event was written before. Throws
 * FencedError when another holder claimed the partition.
 */
export async function passFence(tx: TransactionSql, f: Fence): Promise<boolean> {
  await tx`SELECT set_config('idle_in_transaction_session_timeout', ${`${Math.round(f.idleMs ?? 10_000)}ms`}, true)`;
  const [row] = await tx`SELECT epoch, holder, last_seq FROM evaluator_partitions WHERE name = ${f.name} FOR UPDATE`;
  if (!row || Number(row.epoch) !== f.epoch)
    throw new FencedError(`partition ${f.name} was claimed by ${row?.holder ?? "another holder"}`);
  if (Number(row.last_seq) >= f.seq) return false;
  await tx`UPDATE evaluator_partitions SET last_seq = ${f.seq} WHERE name = ${f.name}`;
  return true;
}
