<?php
/**
 * Idempotent set-up of the test WordPress (run by tests/wp/site.py as www-data with php-cli), in
 * two runs: `setup-site.php install` installs WordPress (WordPress must load with WP_INSTALLING
 * for that), then `setup-site.php configure` re-activates the plugin, creates users and pages and
 * points the plugin at the bridge, and prints one JSON line with the pages and users.
 *
 * Environment: WP_URL, WP_DIR, ADMIN_USER, ADMIN_PASS, ADMIN_EMAIL, BRIDGE_URL, BRIDGE_TOKEN,
 * PERSONA_SCRIPT_URL.
 */

$wp_url                 = getenv( 'WP_URL' );
$_SERVER['HTTP_HOST']   = parse_url( $wp_url, PHP_URL_HOST ) . ':' . parse_url( $wp_url, PHP_URL_PORT );
$_SERVER['REQUEST_URI'] = '/';
$_SERVER['SERVER_NAME'] = parse_url( $wp_url, PHP_URL_HOST );

$phase = isset( $argv[1] ) ? $argv[1] : 'configure';
if ( 'install' === $phase ) {
	define( 'WP_INSTALLING', true );
}
require getenv( 'WP_DIR' ) . '/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';
require_once ABSPATH . 'wp-admin/includes/user.php';

if ( 'install' === $phase ) {
	if ( ! is_blog_installed() ) {
		wp_install( 'kyc-bridge test site', getenv( 'ADMIN_USER' ), getenv( 'ADMIN_EMAIL' ), false, '', wp_slash( getenv( 'ADMIN_PASS' ) ) );
	}
	echo "installed\n";
	exit( 0 );
}
update_option( 'permalink_structure', '/%postname%/' );
update_option( 'blog_public', 0 );
update_option( 'show_avatars', 0 );   // no Gravatar requests: the tests stay on this machine

$admin = get_user_by( 'login', getenv( 'ADMIN_USER' ) );
wp_set_password( getenv( 'ADMIN_PASS' ), $admin->ID );
// The site is cached between runs: every run starts with the default rows per page, whatever an
// earlier run's screen-options test chose for its users.
delete_metadata( 'user', 0, 'kycb_inquiries_per_page', '', true );
wp_set_current_user( $admin->ID );

// Fresh activation every run: the activation hook (capability, token option) runs each time.
$plugin = 'kyc-bridge/kyc-bridge.php';
if ( is_plugin_active( $plugin ) ) {
	deactivate_plugins( $plugin, true );
}
$activated = activate_plugin( $plugin );
if ( is_wp_error( $activated ) ) {
	fwrite( STDERR, $activated->get_error_message() . "\n" );
	exit( 1 );
}

// Point the plugin at this run's bridge.
update_option(
	'kycb_settings',
	array(
		'bridge_url'     => getenv( 'BRIDGE_URL' ),
		'user_type'      => 'investor',
		'flow'           => 'embedded',
		'environment_id' => 'env_wptest123',
		'gate_message'   => '',
	)
);
\KycBridge\Settings::set_token( getenv( 'BRIDGE_TOKEN' ) );
update_option( 'kycb_test_persona_script_url', getenv( 'PERSONA_SCRIPT_URL' ) );
\KycBridge\Lifecycle::delete_transients();   // the bridge is new each run

$users = array();
foreach ( array(
	'alice' => array( 'alice@example.test', 'Alice', 'subscriber' ),
	'bob'   => array( 'bob@example.test', 'Bob', 'subscriber' ),
	'carol' => array( 'carol@example.test', 'Carol', 'subscriber' ),
) as $login => $info ) {
	$pass = 'kycb-' . $login . '-Pass-1';
	$user = get_user_by( 'login', $login );
	$id   = $user ? $user->ID : wp_create_user( $login, $pass, $info[0] );
	if ( is_wp_error( $id ) ) {
		fwrite( STDERR, $id->get_error_message() . "\n" );
		exit( 1 );
	}
	wp_update_user(
		array(
			'ID'         => $id,
			'user_pass'  => $pass,
			'user_email' => $info[0],
			'first_name' => $info[1],
			'role'       => $info[2],
		)
	);
	$users[ $login ] = array(
		'id'    => $id,
		'email' => $info[0],
		'pass'  => $pass,
	);
}
$users[ getenv( 'ADMIN_USER' ) ] = array(
	'id'    => $admin->ID,
	'email' => $admin->user_email,
	'pass'  => getenv( 'ADMIN_PASS' ),
);

$pages = array();
foreach ( array(
	'kyc-verify'       => array( 'Verify your identity', '[kyc_verify type="investor"]' ),
	'kyc-members'      => array( 'Members', "[kyc_gate type=\"investor\" level=\"enhanced\"]<p class=\"secret\">Investor documents</p>[/kyc_gate]" ),
	'kyc-verify-block' => array( 'Verify (block)', '<!-- wp:kyc-bridge/verify {"userType":"customer"} /-->' ),
	'kyc-my-status'    => array( 'My verification', '[kyc_status]' ),
) as $slug => $page ) {
	$existing = get_page_by_path( $slug, OBJECT, 'page' );
	$id       = wp_insert_post(
		array(
			'ID'           => $existing ? $existing->ID : 0,
			'post_type'    => 'page',
			'post_status'  => 'publish',
			'post_name'    => $slug,
			'post_title'   => $page[0],
			'post_content' => $page[1],
		),
		true
	);
	if ( is_wp_error( $id ) ) {
		fwrite( STDERR, $id->get_error_message() . "\n" );
		exit( 1 );
	}
	$pages[ $slug ] = get_permalink( $id );
}
flush_rewrite_rules( false );

echo wp_json_encode(
	array(
		'pages' => $pages,
		'users' => $users,
	)
), "\n";
