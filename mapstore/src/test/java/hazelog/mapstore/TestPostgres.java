package hazelog.mapstore;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.Assumptions;

/**
 * A throwaway PostgreSQL cluster for the tests: initdb into a temporary directory, listening on
 * a free loopback port only (and its socket in that directory), never the machine's own
 * cluster. As root, the server runs as the "postgres" user (PostgreSQL refuses root).
 */
final class TestPostgres implements AutoCloseable {
    static final String USER = "hazelog";
    static final String PASSWORD = "test-only-password";
    private static final Path BIN = Path.of(System.getenv().getOrDefault("HAZELOG_PG_BIN", "/usr/lib/postgresql/15/bin"));
    private static final boolean ROOT = "root".equals(System.getProperty("user.name"));

    final Path dir;
    final Path data;
    final int port;

    private TestPostgres(Path dir, int port) {
        this.dir = dir;
        this.data = dir.resolve("data");
        this.port = port;
    }

    /** Skips the calling test without PostgreSQL, except under CI=true where it fails. */
    static void require() {
        boolean present = Files.isExecutable(BIN.resolve("initdb"));
        String reason = "PostgreSQL binaries not found in " + BIN + " (scripts/system-deps.sh installs them)";
        if (!present && "true".equalsIgnoreCase(System.getenv("CI"))) {
            fail("CI must run this test, but: " + reason);
        }
        Assumptions.assumeTrue(present, reason);
    }

    static TestPostgres start() throws IOException, InterruptedException {
        require();
        Path dir = Files.createTempDirectory("hazelog-pg-");
        Path passwordFile = dir.resolve("password");
        Files.writeString(passwordFile, PASSWORD + "\n", StandardCharsets.UTF_8);
        if (ROOT) {
            run(List.of("chown", "-R", "postgres:postgres", dir.toString()));
        }
        TestPostgres postgres = new TestPostgres(dir, freePort());
        postgres.pg(List.of(BIN.resolve("initdb").toString(), "-D", postgres.data.toString(), "-U", USER,
                "--pwfile=" + passwordFile, "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"));
        postgres.startServer();
        return postgres;
    }

    String url() {
        return "jdbc:postgresql://127.0.0.1:" + port + "/postgres";
    }

    void startServer() throws IOException, InterruptedException {
        String options = "-p " + port + " -k " + dir + " -c listen_addresses=127.0.0.1 -c fsync=off";
        pg(List.of(BIN.resolve("pg_ctl").toString(), "-D", data.toString(), "-l", dir.resolve("server.log").toString(),
                "-w", "-t", "60", "-o", options, "start"));
    }

    void stopServer() throws IOException, InterruptedException {
        pg(List.of(BIN.resolve("pg_ctl").toString(), "-D", data.toString(), "-m", "fast", "-w", "-t", "60", "stop"));
    }

    @Override
    public void close() throws IOException, InterruptedException {
        try {
            if (Files.exists(data.resolve("postmaster.pid"))) {
                stopServer();
            }
        } finally {
            try (Stream<Path> paths = Files.walk(dir)) {
                paths.sorted(Comparator.reverseOrder()).forEach(path -> path.toFile().delete());
            }
        }
    }

    private void pg(List<String> command) throws IOException, InterruptedException {
        List<String> argv = new ArrayList<>();
        if (ROOT) {
            argv.addAll(List.of("runuser", "-u", "postgres", "--"));
        }
        argv.addAll(command);
        run(argv);
    }

    private static void run(List<String> argv) throws IOException, InterruptedException {
        Process process = new ProcessBuilder(argv).redirectErrorStream(true).start();
        byte[] output = process.getInputStream().readAllBytes();
        if (!process.waitFor(120, TimeUnit.SECONDS) || process.exitValue() != 0) {
            throw new IOException(String.join(" ", argv) + " failed:\n" + new String(output, StandardCharsets.UTF_8));
        }
    }

    private static int freePort() throws IOException {
        try (ServerSocket socket = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            return socket.getLocalPort();
        }
    }
}
