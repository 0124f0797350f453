// Parse a Hazelcast member YAML config the way the member will, and exit 1 naming the problem
// when it is unusable. The hazelcast role's template `validate:` runs it (Java's source-file
// mode: java -cp hazelcast.jar HazelcastConfigCheck.java FILE) before a config replaces the
// live one, so a member is never restarted onto a config it would refuse.
import com.hazelcast.config.Config;
import com.hazelcast.config.YamlConfigBuilder;

public final class HazelcastConfigCheck {
    public static void main(String[] args) {
        if (args.length != 1) {
            System.err.println("usage: java -cp hazelcast.jar HazelcastConfigCheck.java FILE");
            System.exit(2);
        }
        try {
            Config config = new YamlConfigBuilder(args[0]).build();
            System.out.println(args[0] + ": valid Hazelcast member config, cluster "
                    + config.getClusterName() + ", port " + config.getNetworkConfig().getPort());
        } catch (Exception | LinkageError e) {
            System.err.println(args[0] + ": not a valid Hazelcast member config: " + e);
            System.exit(1);
        }
    }
}
