package hazelog.mapstore;

import com.hazelcast.core.HazelcastInstance;
import com.hazelcast.core.HazelcastJsonValue;
import com.hazelcast.map.MapLoaderLifecycleSupport;
import com.hazelcast.map.MapStore;
import com.hazelcast.map.IMap;
import com.hazelcast.map.LocalMapStats;
import com.hazelcast.spi.exception.RetryableHazelcastException;
import java.sql.Array;
import java.sql.Connection;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.Function;
import java.util.logging.Level;
import java.util.logging.Logger;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Keeps hazelog's "messages" map in one PostgreSQL table: key = message UUID, value = the JSON
 * text the logging services store ({"accepted_at": ..., "uuid": ..., "msg": ...}), kept
 * byte for byte in a text column (jsonb would reorder the keys the GET relies on).
 *
 * <p>Single stores (write-through calls one per put) are group-committed: those arriving while
 * earlier ones are being written go together in the next transaction; each returns only once
 * its entry is committed.
 *
 * <p>A put of a new message does not read the table first. Hazelcast asks the loader for a key
 * the map does not hold (put-if-absent must know whether it exists), but the map already holds
 * every row: Hazelcast runs no operation on a partition before the eager initial load has
 * filled it (it retries them meanwhile), and rows reach the table only through the map. So
 * {@link #load} answers "absent" without a SELECT, and the store that follows checks instead,
 * in the INSERT itself: a row already there with the same text is left as it is (a retry of a
 * store that committed although its put failed), and one with other text (the same rare
 * cases, retried under the same UUID with another accept time or text; or a partition lost
 * with all its backups) refuses the put with a retryable exception: Hazelcast runs the put
 * again, and this time {@link #load} reads the row, so put-if-absent answers with the message
 * stored first, as if the map had held it.
 *
 * <p>Map-store properties: {@code jdbc-url} (required), {@code user}, {@code password},
 * {@code table} (default: the map's name), {@code pool-size} (8), {@code connect-timeout-seconds}
 * (5), {@code socket-timeout-seconds} (10), {@code initial-load-wait-seconds} (0: the eager
 * initial load waits for the database as long as it takes, so members may start before it; a
 * load that gave up would leave the map serving an empty or partial log),
 * {@code max-entry-bytes} (0: unbounded): the most memory this member's entries (owned and
 * backups) may take; a store beyond it throws {@link LogFullException}, so the map refuses the
 * put before the member could run out of heap.
 */
public final class PostgresMessageStore implements MapStore<String, HazelcastJsonValue>, MapLoaderLifecycleSupport {

    private static final Logger LOG = Logger.getLogger(PostgresMessageStore.class.getName());
    private static final Pattern IDENTIFIER = Pattern.compile("[a-z_][a-z0-9_]{0,62}");
    // The logging services write accepted_at first; another layout still finds it (or gets 0).
    private static final Pattern ACCEPTED_AT = Pattern.compile("\"accepted_at\"\\s*:\\s*(\\d{1,19})");
    private static final long RETRY_PAUSE_MILLIS = 1000;
    // How often the member's own entry memory cost is read again (it walks every partition);
    // between two reads, what was stored since is counted by estimate.
    private static final long STATS_INTERVAL_NANOS = 100_000_000L;
    // Per-entry cost besides the key and value bytes (record, hash table slot, Data headers).
    private static final long ENTRY_OVERHEAD_BYTES = 200;
    private static final long UNVERIFIED_PRUNE_NANOS = 60_000_000_000L;
    private static final long UNVERIFIED_KEEP_NANOS = 600_000_000_000L;

    private ConnectionPool pool;
    private String table;
    private long initialLoadWaitMillis;
    private HazelcastInstance instance;
    private String mapName;
    private long maxEntryBytes;
    private volatile long measuredCost;
    private volatile long measuredAt;
    private final AtomicLong storedSince = new AtomicLong();
    private GroupedCalls<Map.Entry<String, Write>, Void> groupCommit;
    private GroupedCalls<String, HazelcastJsonValue> groupLoad;
    private volatile IMap<?, ?> proxy;
    private final AtomicBoolean proxyFetcher = new AtomicBoolean();
    // Keys load answered "absent" for without reading the table (nanoTime of the answer),
    // until their store checks the table for them.
    private final ConcurrentHashMap<String, Long> unverified = new ConcurrentHashMap<>();
    private final AtomicLong unverifiedPrunedAt = new AtomicLong(System.nanoTime());
    // Keys a store found in the table with other text: their next load reads the row.
    private final Set<String> inTable = ConcurrentHashMap.newKeySet();
    private final AtomicLong singleLoadsRead = new AtomicLong();

    /** A store's value, and whether load answered "absent" for its key without reading. */
    private record Write(HazelcastJsonValue value, boolean unverified) {
    }

    @Override
    public void init(HazelcastInstance instance, Properties properties, String mapName) {
        String url = required(properties, "jdbc-url");
        table = properties.getProperty("table", mapName);
        if (!IDENTIFIER.matcher(table).matches()) {
            throw new IllegalArgumentException("table must be a lower-case SQL identifier, not " + table);
        }
        int poolSize = Math.max(1, intProperty(properties, "pool-size", 8));
        int connectTimeout = intProperty(properties, "connect-timeout-seconds", 5);
        int socketTimeout = intProperty(properties, "socket-timeout-seconds", 10);
        initialLoadWaitMillis = 1000L * intProperty(properties, "initial-load-wait-seconds", 0);
        String maxBytes = properties.getProperty("max-entry-bytes", "0").trim();
        maxEntryBytes = Long.parseLong(maxBytes.isEmpty() ? "0" : maxBytes);
        this.instance = instance;
        this.mapName = mapName;
        measuredAt = System.nanoTime() - 2 * STATS_INTERVAL_NANOS;

        Properties jdbc = new Properties();
        jdbc.setProperty("user", properties.getProperty("user", ""));
        jdbc.setProperty("password", properties.getProperty("password", ""));
        // A stopped or unreachable database must fail an operation within seconds (the client
        // then answers 503), never hold a partition thread indefinitely.
        jdbc.setProperty("connectTimeout", Integer.toString(connectTimeout));
        jdbc.setProperty("loginTimeout", Integer.toString(connectTimeout));
        jdbc.setProperty("socketTimeout", Integer.toString(socketTimeout));
        jdbc.setProperty("tcpKeepAlive", "true");
        // storeAll's batch goes out as multi-row INSERTs.
        jdbc.setProperty("reWriteBatchedInserts", "true");
        jdbc.setProperty("ApplicationName", "hazelog-mapstore");
        String schema = "CREATE TABLE IF NOT EXISTS " + table
                + " (uuid text PRIMARY KEY, accepted_at bigint NOT NULL, body text NOT NULL)";
        pool = new ConnectionPool(url, jdbc, schema, poolSize, 1000L * (connectTimeout + socketTimeout));
        // One write and one read at a time, up to 500 rows each: what arrives meanwhile goes in
        // the next one. More at once only made more, smaller transactions (measured at c64:
        // 4 writers and 4 readers per member took 1.5 commits per message, one each 0.6, and
        // stored about 40 % more messages a second on the same busy machine).
        groupCommit = new GroupedCalls<>("hazelog-group-commit-" + mapName, this::writeBatch, 500);
        groupLoad = new GroupedCalls<>("hazelog-group-load-" + mapName, keys -> {
            Set<String> distinct = new LinkedHashSet<>(keys);
            return run("load " + distinct.size() + " entries", connection -> select(connection, distinct))::get;
        }, 500);
        LOG.info("map " + mapName + " is kept in PostgreSQL table " + table + " at " + url);
    }

    @Override
    public void destroy() {
        if (groupCommit != null) {
            groupCommit.close();
            groupLoad.close();
        }
        if (pool != null) {
            pool.close();
        }
    }

    @Override
    public void store(String key, HazelcastJsonValue value) {
        // Write-through calls this once per put, from many threads at once: group commit.
        long incoming = reserve(Map.of(key, value));
        try {
            groupCommit.call(Map.entry(key, new Write(value, unverified.remove(key) != null)));
        } catch (RuntimeException e) {
            storedSince.addAndGet(-incoming);
            throw e;
        }
    }

    @Override
    public void storeAll(Map<String, HazelcastJsonValue> entries) {
        if (entries.isEmpty()) {
            return;
        }
        long incoming = reserve(entries);
        try {
            Map<String, Write> writes = new HashMap<>();
            entries.forEach((key, value) -> writes.put(key, new Write(value, unverified.remove(key) != null)));
            Map<String, RuntimeException> refused = write(writes);
            if (!refused.isEmpty()) {
                throw refused.values().iterator().next();
            }
        } catch (RuntimeException e) {
            storedSince.addAndGet(-incoming);
            throw e;
        }
    }

    /** Group commit's batch: one row per key (a later value wins, as a map's store would leave it). */
    private Function<Map.Entry<String, Write>, Void> writeBatch(List<Map.Entry<String, Write>> batch) {
        Map<String, Write> entries = new LinkedHashMap<>();
        batch.forEach(entry -> entries.put(entry.getKey(), entry.getValue()));
        Map<String, RuntimeException> refused = write(entries);
        return entry -> {
            RuntimeException failure = refused.get(entry.getKey());
            if (failure != null) {
                throw failure;
            }
            return null;
        };
    }

    /**
     * Commits the entries in one transaction; answers those refused because the table holds
     * their key with other text although load said it was absent (the others are committed).
     */
    private Map<String, RuntimeException> write(Map<String, Write> entries) {
        Map<String, HazelcastJsonValue> replacing = new HashMap<>();
        Map<String, HazelcastJsonValue> adding = new HashMap<>();
        entries.forEach((key, write) -> (write.unverified() ? adding : replacing).put(key, write.value()));
        return run("store " + entries.size() + " entries", connection -> {
            if (replacing.isEmpty()) {
                // New messages only (the usual case): one INSERT is its own transaction, so no
                // BEGIN and COMMIT round trips around it.
                return insertNew(connection, adding);
            }
            connection.setAutoCommit(false);
            try {
                upsert(connection, replacing);
                Map<String, RuntimeException> refused = adding.isEmpty() ? Map.of() : insertNew(connection, adding);
                connection.commit();
                return refused;
            } catch (SQLException e) {
                connection.rollback();
                throw e;
            } finally {
                connection.setAutoCommit(true);
            }
        });
    }

    /** A key the map held (or a storeAll's): its row is replaced, as a map's put replaces. */
    private void upsert(Connection connection, Map<String, HazelcastJsonValue> entries) throws SQLException {
        String sql = "INSERT INTO " + table + " (uuid, accepted_at, body) VALUES (?, ?, ?)"
                + " ON CONFLICT (uuid) DO UPDATE SET accepted_at = EXCLUDED.accepted_at, body = EXCLUDED.body";
        try (PreparedStatement insert = connection.prepareStatement(sql)) {
            for (Map.Entry<String, HazelcastJsonValue> entry : entries.entrySet()) {
                String json = entry.getValue().toString();
                insert.setString(1, entry.getKey());
                insert.setLong(2, acceptedAt(json));
                insert.setString(3, json);
                insert.addBatch();
            }
            insert.executeBatch();
        }
    }

    /**
     * Keys load answered "absent" for without reading: inserted unless the table has them. A
     * row already there with the same text is a retried store that had committed: done. One
     * with other text is refused, retryably, and read by the key's next load.
     */
    private Map<String, RuntimeException> insertNew(Connection connection, Map<String, HazelcastJsonValue> entries)
            throws SQLException {
        List<String> keys = new ArrayList<>(entries.keySet());
        Long[] acceptedAt = new Long[keys.size()];
        String[] bodies = new String[keys.size()];
        for (int i = 0; i < keys.size(); i++) {
            bodies[i] = entries.get(keys.get(i)).toString();
            acceptedAt[i] = acceptedAt(bodies[i]);
        }
        Set<String> present = new HashSet<>(keys);
        String sql = "INSERT INTO " + table + " (uuid, accepted_at, body)"
                + " SELECT * FROM unnest(?::text[], ?::bigint[], ?::text[])"
                + " ON CONFLICT (uuid) DO NOTHING RETURNING uuid";
        try (PreparedStatement insert = connection.prepareStatement(sql)) {
            insert.setArray(1, connection.createArrayOf("text", keys.toArray()));
            insert.setArray(2, connection.createArrayOf("bigint", acceptedAt));
            insert.setArray(3, connection.createArrayOf("text", bodies));
            try (ResultSet rows = insert.executeQuery()) {
                while (rows.next()) {
                    present.remove(rows.getString(1));
                }
            }
        }
        if (present.isEmpty()) {
            return Map.of();
        }
        Map<String, HazelcastJsonValue> stored = select(connection, present);
        Map<String, RuntimeException> refused = new HashMap<>();
        for (String key : present) {
            HazelcastJsonValue row = stored.get(key);
            if (row != null && row.toString().equals(entries.get(key).toString())) {
                continue;
            }
            inTable.add(key);
            refused.put(key, new RetryableHazelcastException("message " + key + " is already in table " + table
                    + " with other content although the map did not hold it: the put is retried with the stored row"));
        }
        return refused;
    }

    @Override
    public void delete(String key) {
        deleteAll(List.of(key));
    }

    @Override
    public void deleteAll(Collection<String> keys) {
        if (keys.isEmpty()) {
            return;
        }
        run("delete " + keys.size() + " entries", connection -> {
            try (PreparedStatement delete = connection.prepareStatement("DELETE FROM " + table + " WHERE uuid = ANY (?)")) {
                delete.setArray(1, textArray(connection, keys));
                delete.executeUpdate();
            }
            return null;
        });
    }

    /**
     * A key the map does not hold (a put of a new message asks first): absent, without reading
     * the table (see the class comment), unless a store found the key in the table. Then one
     * attempt, so a put during a database outage fails at once and partition threads are never
     * held; loads arriving together share one SELECT (group load).
     */
    @Override
    public HazelcastJsonValue load(String key) {
        if (!inTable.remove(key)) {
            long now = System.nanoTime();
            unverified.put(key, now);
            pruneUnverified(now);
            return null;
        }
        singleLoadsRead.incrementAndGet();
        try {
            return groupLoad.call(key);
        } catch (RuntimeException e) {
            inTable.add(key);
            throw e;
        }
    }

    /**
     * Forgets unverified keys no store followed (a get of a missing key) after ten minutes, at
     * most once a minute: a store comes within seconds of its load.
     */
    private void pruneUnverified(long now) {
        long last = unverifiedPrunedAt.get();
        if (now - last > UNVERIFIED_PRUNE_NANOS && unverifiedPrunedAt.compareAndSet(last, now)) {
            unverified.values().removeIf(at -> now - at > UNVERIFIED_KEEP_NANOS);
        }
    }

    /** Single loads that read the table (the others answered "absent" at once): for tests. */
    long singleLoadsRead() {
        return singleLoadsRead.get();
    }

    /**
     * The values of a batch of the keys {@link #loadAllKeys} listed: what the eager initial
     * load calls (on Hazelcast's map-load threads, not the partition threads). Waits for the
     * database like loadAllKeys: Hazelcast does not retry a failed batch, it completes the
     * load without it, and the map would then serve a partial log (seen: 939 of 1,000
     * messages after a full restart, when the members' first connections timed out on a busy
     * machine).
     */
    @Override
    public Map<String, HazelcastJsonValue> loadAll(Collection<String> keys) {
        if (keys.isEmpty()) {
            return Map.of();
        }
        return waitingForDatabase("load " + keys.size() + " entries", connection -> select(connection, keys));
    }

    private Map<String, HazelcastJsonValue> select(Connection connection, Collection<String> keys) throws SQLException {
        Map<String, HazelcastJsonValue> found = new HashMap<>();
        try (PreparedStatement select = connection.prepareStatement("SELECT uuid, body FROM " + table + " WHERE uuid = ANY (?)")) {
            select.setArray(1, textArray(connection, keys));
            try (ResultSet rows = select.executeQuery()) {
                while (rows.next()) {
                    found.put(rows.getString(1), new HazelcastJsonValue(rows.getString(2)));
                }
            }
        }
        return found;
    }

    /**
     * Every key, for the eager initial load. Waits for the database (for ever by default):
     * Hazelcast does not retry a failed initial load, the map would then serve an empty or
     * partial log; meanwhile operations on the map wait, and clients answer 503.
     */
    @Override
    public Iterable<String> loadAllKeys() {
        List<String> keys = waitingForDatabase("list the keys", connection -> {
            List<String> all = new ArrayList<>();
            connection.setAutoCommit(false); // a fetch size streams only inside a transaction
            try (PreparedStatement select = connection.prepareStatement("SELECT uuid FROM " + table)) {
                select.setFetchSize(10_000);
                try (ResultSet rows = select.executeQuery()) {
                    while (rows.next()) {
                        all.add(rows.getString(1));
                    }
                }
                connection.commit();
            } finally {
                connection.setAutoCommit(true);
            }
            return all;
        });
        LOG.info("initial load: " + keys.size() + " keys in table " + table);
        return keys;
    }

    /**
     * {@code work}, tried again every second while the database cannot be reached, up to
     * initial-load-wait-seconds (0: for ever) or until the member stops.
     */
    private <T> T waitingForDatabase(String what, ConnectionPool.Work<T> work) {
        long deadline = initialLoadWaitMillis > 0
                ? System.currentTimeMillis() + initialLoadWaitMillis
                : Long.MAX_VALUE;
        while (true) {
            try {
                return pool.with(work);
            } catch (SQLException e) {
                boolean stopping = instance != null && !instance.getLifecycleService().isRunning();
                if (System.currentTimeMillis() >= deadline || stopping) {
                    throw unavailable(what, e);
                }
                LOG.log(Level.WARNING, "initial load waits for PostgreSQL to " + what + ": " + e.getMessage());
                try {
                    Thread.sleep(RETRY_PAUSE_MILLIS);
                } catch (InterruptedException interrupted) {
                    Thread.currentThread().interrupt();
                    throw unavailable(what, e);
                }
            }
        }
    }

    /**
     * Counts the entries against max-entry-bytes; LogFullException (nothing counted) when they
     * do not fit. Returns the bytes counted.
     */
    private long reserve(Map<String, HazelcastJsonValue> entries) {
        long incoming = 0;
        for (Map.Entry<String, HazelcastJsonValue> entry : entries.entrySet()) {
            incoming += estimatedCost(entry.getKey(), entry.getValue().toString());
        }
        if (maxEntryBytes <= 0 || instance == null) {
            return 0;
        }
        long now = System.nanoTime();
        IMap<?, ?> map = mapProxy();
        if (map != null && now - measuredAt > STATS_INTERVAL_NANOS) {
            LocalMapStats stats = map.getLocalMapStats();
            measuredCost = stats.getOwnedEntryMemoryCost() + stats.getBackupEntryMemoryCost();
            storedSince.set(0);
            measuredAt = now;
        }
        long used = measuredCost + storedSince.addAndGet(incoming);
        if (used > maxEntryBytes) {
            storedSince.addAndGet(-incoming);
            throw new LogFullException("log_full: this member's entries would take " + used
                    + " bytes, more than the " + maxEntryBytes + " it may hold (max-entry-bytes)");
        }
        return incoming;
    }

    /**
     * The map's proxy on this member, for its memory statistics; null until it exists. Never
     * fetched inside a map operation: getMap there can wait on the map being set up, which
     * waits on the operation (a deadlock seen under load). A background thread fetches it once.
     */
    private IMap<?, ?> mapProxy() {
        IMap<?, ?> map = proxy;
        if (map == null && proxyFetcher.compareAndSet(false, true)) {
            Thread fetch = new Thread(() -> {
                try {
                    proxy = instance.getMap(mapName);
                } catch (RuntimeException e) {
                    LOG.log(Level.WARNING, "no statistics of map " + mapName + " yet", e);
                    proxyFetcher.set(false);
                }
            }, "hazelog-mapstore-stats");
            fetch.setDaemon(true);
            fetch.start();
        }
        return map;
    }

    /** Memory an entry takes in the map: key and value as UTF-16 at worst, plus the record. */
    static long estimatedCost(String key, String json) {
        return 2L * (key.length() + json.length()) + ENTRY_OVERHEAD_BYTES;
    }

    /** The accepted_at of a stored JSON text, 0 when it has none. */
    static long acceptedAt(String json) {
        Matcher matcher = ACCEPTED_AT.matcher(json);
        if (matcher.find()) {
            try {
                return Long.parseLong(matcher.group(1));
            } catch (NumberFormatException tooBig) {
                return 0;
            }
        }
        return 0;
    }

    private <T> T run(String what, ConnectionPool.Work<T> work) {
        try {
            return pool.with(work);
        } catch (SQLException e) {
            throw unavailable(what, e);
        }
    }

    private StoreUnavailableException unavailable(String what, SQLException e) {
        String state = e.getSQLState() == null ? "" : " [SQLSTATE " + e.getSQLState() + "]";
        return new StoreUnavailableException(
                "PostgreSQL unavailable: could not " + what + " in table " + table + ": " + e.getMessage() + state, e);
    }

    private static Array textArray(Connection connection, Collection<String> keys) throws SQLException {
        return connection.createArrayOf("text", keys.toArray());
    }

    private static String required(Properties properties, String name) {
        String value = properties.getProperty(name);
        if (value == null || value.isBlank()) {
            throw new IllegalArgumentException("map-store property " + name + " is required");
        }
        return value;
    }

    private static int intProperty(Properties properties, String name, int fallback) {
        String value = properties.getProperty(name);
        if (value == null || value.isBlank()) {
            return fallback;
        }
        int parsed = Integer.parseInt(value.trim());
        if (parsed < 0) {
            throw new IllegalArgumentException("map-store property " + name + " must not be negative");
        }
        return parsed;
    }
}
