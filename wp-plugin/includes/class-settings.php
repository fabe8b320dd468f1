<?php
/**
 * Settings page (Settings → KYC Bridge) and the "Test connection" action.
 *
 * @package KycBridge
 */

namespace KycBridge;

defined( 'ABSPATH' ) || exit;

/**
 * The plugin's settings: one option for the settings, one (not autoloaded) for the token.
 */
final class Settings {

	const OPTION       = 'kycb_settings';
	const TOKEN_OPTION = 'kycb_bridge_token';
	const PAGE         = 'kyc-bridge';
	const GROUP        = 'kycb_settings_group';

	/**
	 * The six user types of the bridge.
	 *
	 * @var string[]
	 */
	const USER_TYPES = array( 'contributor', 'intern', 'investor', 'customer', 'cooperative_member', 'vendor' );

	/**
	 * The two ways of running Persona's flow.
	 *
	 * @var string[]
	 */
	const FLOWS = array( 'embedded', 'hosted' );

	/**
	 * Default values of the settings option.
	 *
	 * @return array<string, string>
	 */
	public static function defaults() {
		return array(
			'bridge_url'     => '',
			'user_type'      => 'customer',
			'flow'           => 'embedded',
			'environment_id' => '',
			'gate_message'   => '',
			'shop_products'  => '',
			'verify_page'    => 0,
			'hold_orders'    => 0,
			'register_roles' => '',
		);
	}

	/**
	 * The roles whose new users are sent to verify: role => user type.
	 *
	 * @return array<string, string>
	 */
	public static function registration_roles() {
		return self::parse_roles( (string) self::get( 'register_roles' ) )[0];
	}

	/**
	 * Parse "role = user type" lines (roles this site has).
	 *
	 * @param string $text Lines.
	 * @return array{0: array<string, string>, 1: string[]} The map, and the lines that are not valid.
	 */
	public static function parse_roles( $text ) {
		$roles = wp_roles()->get_names();
		return self::parse_user_type_lines(
			$text,
			'[a-z0-9_-]+',
			function ( $role ) use ( $roles ) {
				return isset( $roles[ $role ] ) ? $role : null;
			}
		);
	}

	/**
	 * Parse "key = user type" lines: the map of valid ones, and the lines that are not.
	 *
	 * @param string   $text    Lines.
	 * @param string   $pattern Regular expression of a key.
	 * @param callable $key     The key to store for a matched key, or null when it is not valid.
	 * @return array{0: array, 1: string[]}
	 */
	private static function parse_user_type_lines( $text, $pattern, $key ) {
		$map = array();
		$bad = array();
		foreach ( preg_split( '/\r\n|\r|\n/', $text ) as $line ) {
			$line = trim( $line );
			if ( '' === $line ) {
				continue;
			}
			$stored = preg_match( '/^(' . $pattern . ')\s*=\s*([a-z_]+)$/', $line, $match ) ? $key( $match[1] ) : null;
			if ( null !== $stored && in_array( $match[2], self::USER_TYPES, true ) ) {
				$map[ $stored ] = $match[2];
			} else {
				$bad[] = $line;
			}
		}
		return array( $map, $bad );
	}

	/**
	 * A parsed map back as "key = user type" lines.
	 *
	 * @param array $map Key => user type.
	 * @return string
	 */
	private static function lines_of( $map ) {
		$lines = array();
		foreach ( $map as $key => $type ) {
			$lines[] = $key . ' = ' . $type;
		}
		return implode( "\n", $lines );
	}

	/**
	 * The shop products that need a verification: product (post) id => user type.
	 *
	 * @return array<int, string>
	 */
	public static function shop_products() {
		return self::parse_products( (string) self::get( 'shop_products' ) )[0];
	}

	/**
	 * Parse "product id = user type" lines.
	 *
	 * @param string $text Lines.
	 * @return array{0: array<int, string>, 1: string[]} The map, and the lines that are not valid.
	 */
	public static function parse_products( $text ) {
		return self::parse_user_type_lines(
			$text,
			'\d+',
			function ( $id ) {
				return (int) $id > 0 ? (int) $id : null;
			}
		);
	}

	/**
	 * One setting, or all of them.
	 *
	 * @param string|null $key Setting name; null for the whole array.
	 * @return mixed
	 */
	public static function get( $key = null ) {
		$stored   = get_option( self::OPTION, array() );
		$settings = array_merge( self::defaults(), is_array( $stored ) ? $stored : array() );
		if ( null === $key ) {
			return $settings;
		}
		return isset( $settings[ $key ] ) ? $settings[ $key ] : null;
	}

	/**
	 * The bridge token (never printed back to a page).
	 *
	 * @return string
	 */
	public static function token() {
		$token = get_option( self::TOKEN_OPTION, '' );
		return is_string( $token ) ? $token : '';
	}

	/**
	 * Store the token without autoload.
	 *
	 * @param string $token The bridge's BRIDGE_ADMIN_TOKEN.
	 */
	public static function set_token( $token ) {
		if ( false === get_option( self::TOKEN_OPTION, false ) ) {
			add_option( self::TOKEN_OPTION, $token, '', 'no' );
			return;
		}
		update_option( self::TOKEN_OPTION, $token, false );
	}

	/**
	 * The user types with their translated names.
	 *
	 * @return array<string, string>
	 */
	public static function user_type_labels() {
		return array(
			'contributor'        => __( 'Contributor', 'kyc-bridge' ),
			'intern'             => __( 'Intern', 'kyc-bridge' ),
			'investor'           => __( 'Investor', 'kyc-bridge' ),
			'customer'           => __( 'Customer', 'kyc-bridge' ),
			'cooperative_member' => __( 'Cooperative member', 'kyc-bridge' ),
			'vendor'             => __( 'Vendor', 'kyc-bridge' ),
		);
	}

	/**
	 * Register the setting and its fields (admin_init).
	 */
	public static function register() {
		register_setting(
			self::GROUP,
			self::OPTION,
			array(
				'type'              => 'array',
				'sanitize_callback' => array( self::class, 'sanitize' ),
				'default'           => self::defaults(),
				'show_in_rest'      => false,
			)
		);
		add_settings_section( 'kycb_bridge', __( 'Bridge connection', 'kyc-bridge' ), array( self::class, 'section_intro' ), self::PAGE );
		add_settings_section( 'kycb_flow', __( 'Verification flow', 'kyc-bridge' ), '__return_false', self::PAGE );
		add_settings_section( 'kycb_shop', __( 'Shop: purchase, then verification', 'kyc-bridge' ), array( self::class, 'section_shop' ), self::PAGE );

		$fields = array(
			'bridge_url'     => array( __( 'Bridge URL', 'kyc-bridge' ), 'kycb_bridge' ),
			'bridge_token'   => array( __( 'Bridge token', 'kyc-bridge' ), 'kycb_bridge' ),
			'user_type'      => array( __( 'Default user type', 'kyc-bridge' ), 'kycb_flow' ),
			'flow'           => array( __( 'Persona flow', 'kyc-bridge' ), 'kycb_flow' ),
			'environment_id' => array( __( 'Persona environment id', 'kyc-bridge' ), 'kycb_flow' ),
			'gate_message'   => array( __( 'Message for gated content', 'kyc-bridge' ), 'kycb_flow' ),
			'shop_products'  => array( __( 'Products that need a verification', 'kyc-bridge' ), 'kycb_shop' ),
			'verify_page'    => array( __( 'Verification page', 'kyc-bridge' ), 'kycb_shop' ),
			'hold_orders'    => array( __( 'Hold orders', 'kyc-bridge' ), 'kycb_shop' ),
			'register_roles' => array( __( 'Verify new users of these roles', 'kyc-bridge' ), 'kycb_shop' ),
		);
		foreach ( $fields as $name => $field ) {
			add_settings_field(
				'kycb_' . $name,
				$field[0],
				array( self::class, 'field_' . $name ),
				self::PAGE,
				$field[1],
				array( 'label_for' => 'kycb_' . $name )
			);
		}
	}

	/**
	 * Sanitise the submitted settings; the token goes to its own option.
	 *
	 * @param mixed $input Submitted values.
	 * @return array<string, string>
	 */
	public static function sanitize( $input ) {
		$input    = is_array( $input ) ? $input : array();
		$current  = self::get();
		$defaults = self::defaults();
		$clean    = array();

		$raw = isset( $input['bridge_url'] ) ? trim( (string) $input['bridge_url'] ) : $current['bridge_url'];
		$url = self::sanitize_bridge_url( $raw );
		if ( '' !== $raw && '' === $url ) {
			add_settings_error( self::OPTION, 'kycb_bridge_url', __( 'The bridge URL must be an http:// or https:// address, e.g. https://kyc.example.com.', 'kyc-bridge' ) );
			$url = $current['bridge_url'];
		}
		$clean['bridge_url'] = $url;

		$type               = isset( $input['user_type'] ) ? sanitize_key( $input['user_type'] ) : '';
		$clean['user_type'] = in_array( $type, self::USER_TYPES, true ) ? $type : $defaults['user_type'];

		$flow          = isset( $input['flow'] ) ? sanitize_key( $input['flow'] ) : '';
		$clean['flow'] = in_array( $flow, self::FLOWS, true ) ? $flow : $defaults['flow'];

		$environment = isset( $input['environment_id'] ) ? sanitize_text_field( $input['environment_id'] ) : '';
		if ( '' !== $environment && ! preg_match( '/^env_[A-Za-z0-9]+$/', $environment ) ) {
			add_settings_error( self::OPTION, 'kycb_environment_id', __( 'A Persona environment id looks like env_… (letters and digits).', 'kyc-bridge' ) );
			$environment = $current['environment_id'];
		}
		$clean['environment_id'] = $environment;

		$clean['gate_message'] = isset( $input['gate_message'] ) ? sanitize_textarea_field( $input['gate_message'] ) : '';

		$products = self::parse_products( isset( $input['shop_products'] ) ? sanitize_textarea_field( $input['shop_products'] ) : '' );
		if ( $products[1] ) {
			/* translators: %s: the lines that were not understood. */
			add_settings_error( self::OPTION, 'kycb_shop_products', sprintf( __( 'Each line is "product id = user type" (e.g. 42 = investor); ignored: %s', 'kyc-bridge' ), implode( '; ', $products[1] ) ) );
		}
		$clean['shop_products'] = self::lines_of( $products[0] );
		$clean['verify_page']   = isset( $input['verify_page'] ) ? absint( $input['verify_page'] ) : 0;
		$clean['hold_orders']   = empty( $input['hold_orders'] ) ? 0 : 1;

		$roles = self::parse_roles( isset( $input['register_roles'] ) ? sanitize_textarea_field( $input['register_roles'] ) : '' );
		if ( $roles[1] ) {
			/* translators: %s: the lines that were not understood. */
			add_settings_error( self::OPTION, 'kycb_register_roles', sprintf( __( 'Each line is "role = user type" with a role of this site (e.g. subscriber = customer); ignored: %s', 'kyc-bridge' ), implode( '; ', $roles[1] ) ) );
		}
		$clean['register_roles'] = self::lines_of( $roles[0] );

		// The token: a blank field keeps the saved one; the "remove" box clears it.
		if ( ! empty( $input['bridge_token_clear'] ) ) {
			self::set_token( '' );
		} elseif ( isset( $input['bridge_token'] ) ) {
			$token = trim( sanitize_text_field( $input['bridge_token'] ) );
			if ( '' !== $token ) {
				self::set_token( $token );
			}
		}
		return $clean;
	}

	/**
	 * A bridge base URL: http(s), a host, no query or fragment, no trailing slash; '' if invalid.
	 *
	 * @param string $raw Submitted URL.
	 * @return string
	 */
	public static function sanitize_bridge_url( $raw ) {
		$url   = esc_url_raw( trim( $raw ), array( 'http', 'https' ) );
		$parts = wp_parse_url( $url );
		if ( '' === $url || ! is_array( $parts ) || empty( $parts['host'] ) || ! empty( $parts['query'] ) || ! empty( $parts['fragment'] ) ) {
			return '';
		}
		return untrailingslashit( $url );
	}

	/**
	 * How the token field shows a saved token: a fixed mask, never any of its characters.
	 *
	 * @param string $token Saved token.
	 * @return string
	 */
	public static function masked_token( $token ) {
		return '' === $token ? '' : str_repeat( '•', 12 );
	}

	/**
	 * Intro text of the connection section.
	 */
	public static function section_intro() {
		echo '<p>' . esc_html__( 'Where the kyc-bridge service runs, and one of its tokens. WordPress calls the bridge from the server; the token never reaches a browser.', 'kyc-bridge' ) . '</p>';
	}

	/**
	 * Bridge URL field.
	 */
	public static function field_bridge_url() {
		printf(
			'<input type="url" class="regular-text code" id="kycb_bridge_url" name="%1$s[bridge_url]" value="%2$s" placeholder="https://kyc.example.com" />',
			esc_attr( self::OPTION ),
			esc_attr( self::get( 'bridge_url' ) )
		);
	}

	/**
	 * Token field: a password input that is always empty, with a mask when a token is saved.
	 */
	public static function field_bridge_token() {
		$saved = self::masked_token( self::token() );
		printf(
			'<input type="password" class="regular-text" id="kycb_bridge_token" name="%1$s[bridge_token]" value="" autocomplete="new-password" placeholder="%2$s" aria-describedby="kycb_bridge_token_help" />',
			esc_attr( self::OPTION ),
			esc_attr( $saved )
		);
		echo '<p class="description" id="kycb_bridge_token_help">';
		esc_html_e( 'The bridge\'s BRIDGE_ADMIN_TOKEN (everything), or its BRIDGE_READ_TOKEN (verification and gating only, no admin page).', 'kyc-bridge' );
		echo ' ';
		if ( '' === $saved ) {
			esc_html_e( 'No token saved yet.', 'kyc-bridge' );
		} else {
			echo esc_html( $saved ) . ' ';
			esc_html_e( 'A token is saved. Leave the field empty to keep it.', 'kyc-bridge' );
			printf(
				' <label><input type="checkbox" name="%1$s[bridge_token_clear]" value="1" /> %2$s</label>',
				esc_attr( self::OPTION ),
				esc_html__( 'Remove the saved token', 'kyc-bridge' )
			);
		}
		echo '</p>';
	}

	/**
	 * Default user type field.
	 */
	public static function field_user_type() {
		echo '<select id="kycb_user_type" name="' . esc_attr( self::OPTION ) . '[user_type]">';
		foreach ( self::user_type_labels() as $value => $label ) {
			printf( '<option value="%1$s"%2$s>%3$s</option>', esc_attr( $value ), selected( self::get( 'user_type' ), $value, false ), esc_html( $label ) );
		}
		echo '</select><p class="description">' . esc_html__( 'Used by [kyc_verify] and [kyc_gate] when they name no type.', 'kyc-bridge' ) . '</p>';
	}

	/**
	 * Flow field (embedded or hosted).
	 */
	public static function field_flow() {
		$labels = array(
			'embedded' => __( 'Embedded: Persona opens over your page', 'kyc-bridge' ),
			'hosted'   => __( 'Hosted: the visitor goes to Persona\'s page and comes back', 'kyc-bridge' ),
		);
		echo '<fieldset id="kycb_flow">';
		foreach ( $labels as $value => $label ) {
			printf(
				'<label><input type="radio" name="%1$s[flow]" value="%2$s"%3$s /> %4$s</label><br />',
				esc_attr( self::OPTION ),
				esc_attr( $value ),
				checked( self::get( 'flow' ), $value, false ),
				esc_html( $label )
			);
		}
		echo '</fieldset>';
	}

	/**
	 * Persona environment id field.
	 */
	public static function field_environment_id() {
		printf(
			'<input type="text" class="regular-text code" id="kycb_environment_id" name="%1$s[environment_id]" value="%2$s" placeholder="env_…" />',
			esc_attr( self::OPTION ),
			esc_attr( self::get( 'environment_id' ) )
		);
		echo '<p class="description">' . esc_html__( 'Sandbox or production environment of your Persona templates. Empty: the bridge\'s PERSONA_ENVIRONMENT_ID is used (without one, Persona uses production).', 'kyc-bridge' ) . '</p>';
	}

	/**
	 * Gate message field.
	 */
	public static function field_gate_message() {
		printf(
			'<textarea class="large-text" rows="2" id="kycb_gate_message" name="%1$s[gate_message]" placeholder="%2$s">%3$s</textarea>',
			esc_attr( self::OPTION ),
			esc_attr( Frontend::default_gate_message() ),
			esc_textarea( self::get( 'gate_message' ) )
		);
	}

	/**
	 * The shop section's introduction.
	 */
	public static function section_shop() {
		echo '<p>' . esc_html__( 'When an order of one of these products is paid (Fluent Cart or WooCommerce) and its buyer is not yet verified at that level, n8n emails them a verification link (once per order) and the receipt shows a "Verify your identity" button.', 'kyc-bridge' ) . '</p>';
	}

	/**
	 * Products field: one "product id = user type" per line.
	 */
	public static function field_shop_products() {
		printf(
			'<textarea class="large-text code" rows="4" id="kycb_shop_products" name="%1$s[shop_products]" aria-describedby="kycb_shop_products_help">%2$s</textarea>',
			esc_attr( self::OPTION ),
			esc_textarea( (string) self::get( 'shop_products' ) )
		);
		/* translators: %s: the user types. */
		echo '<p class="description" id="kycb_shop_products_help">' . esc_html( sprintf( __( 'One per line, e.g. 42 = investor. User types: %s.', 'kyc-bridge' ), implode( ', ', self::USER_TYPES ) ) ) . '</p>';
	}

	/**
	 * The page the receipt's button leads to (a page with [kyc_verify]).
	 */
	public static function field_verify_page() {
		wp_dropdown_pages(
			array(
				'name'              => esc_attr( self::OPTION ) . '[verify_page]',
				'id'                => 'kycb_verify_page',
				'selected'          => (int) self::get( 'verify_page' ),
				'show_option_none'  => esc_html__( '— None —', 'kyc-bridge' ),
				'option_none_value' => '0',
			)
		);
	}

	/**
	 * Hold orders field.
	 */
	public static function field_hold_orders() {
		printf(
			'<label><input type="checkbox" id="kycb_hold_orders" name="%1$s[hold_orders]" value="1"%2$s /> %3$s</label>',
			esc_attr( self::OPTION ),
			checked( (int) self::get( 'hold_orders' ), 1, false ),
			esc_html__( 'Put paid Fluent Cart and WooCommerce orders of these products on hold ("awaiting identity verification") until the buyer is verified; they are released within the hour after the approval (WooCommerce to processing, Fluent Cart to the status the order had).', 'kyc-bridge' )
		);
	}

	/**
	 * Registration trigger field: one "role = user type" per line.
	 */
	public static function field_register_roles() {
		printf(
			'<textarea class="large-text code" rows="3" id="kycb_register_roles" name="%1$s[register_roles]" aria-describedby="kycb_register_roles_help">%2$s</textarea>',
			esc_attr( self::OPTION ),
			esc_textarea( (string) self::get( 'register_roles' ) )
		);
		echo '<p class="description" id="kycb_register_roles_help">' . esc_html__( 'One per line, e.g. subscriber = customer: a new user of that role is emailed a verification link and stays pending until verified.', 'kyc-bridge' ) . '</p>';
	}

	/**
	 * Add Settings → KYC Bridge.
	 */
	public static function add_page() {
		add_options_page(
			__( 'KYC Bridge settings', 'kyc-bridge' ),
			__( 'KYC Bridge', 'kyc-bridge' ),
			'manage_options',
			self::PAGE,
			array( self::class, 'render_page' )
		);
	}

	/**
	 * A "Settings" link on the Plugins screen.
	 *
	 * @param string[] $links Existing links.
	 * @return string[]
	 */
	public static function action_links( $links ) {
		$url = admin_url( 'options-general.php?page=' . self::PAGE );
		array_unshift( $links, '<a href="' . esc_url( $url ) . '">' . esc_html__( 'Settings', 'kyc-bridge' ) . '</a>' );
		return $links;
	}

	/**
	 * The settings page.
	 */
	public static function render_page() {
		if ( ! current_user_can( 'manage_options' ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to manage these settings.', 'kyc-bridge' ), 403 );
		}
		echo '<div class="wrap"><h1>' . esc_html( get_admin_page_title() ) . '</h1>';
		self::render_test_result();
		echo '<form method="post" action="' . esc_url( admin_url( 'options.php' ) ) . '">';
		settings_fields( self::GROUP );
		do_settings_sections( self::PAGE );
		submit_button();
		echo '</form>';

		echo '<h2>' . esc_html__( 'Test connection', 'kyc-bridge' ) . '</h2>';
		echo '<p>' . esc_html__( 'Checks that the saved bridge URL answers, that the bridge is ready, and that the saved token is accepted.', 'kyc-bridge' ) . '</p>';
		echo '<form method="post" action="' . esc_url( admin_url( 'admin-post.php' ) ) . '">';
		echo '<input type="hidden" name="action" value="kycb_test_connection" />';
		wp_nonce_field( 'kycb_test_connection' );
		submit_button( __( 'Test connection', 'kyc-bridge' ), 'secondary', 'kycb-test-connection', false );
		echo '</form></div>';
	}

	/**
	 * The outcome of the last "Test connection" of this user, shown once.
	 */
	private static function render_test_result() {
		$key    = 'kycb_conn_' . get_current_user_id();
		$result = get_transient( $key );
		if ( ! is_array( $result ) ) {
			return;
		}
		delete_transient( $key );
		printf(
			'<div id="kycb-test-result" class="notice notice-%1$s"><p>%2$s</p></div>',
			$result['ok'] ? 'success' : 'error',
			esc_html( $result['message'] )
		);
	}

	/**
	 * The "Test connection" button (admin-post.php): nonce and capability, then back to the page.
	 */
	public static function handle_test_connection() {
		if ( ! current_user_can( 'manage_options' ) ) {
			wp_die( esc_html__( 'Sorry, you are not allowed to test the connection.', 'kyc-bridge' ), 403 );
		}
		check_admin_referer( 'kycb_test_connection' );
		set_transient( 'kycb_conn_' . get_current_user_id(), self::test_connection(), 5 * MINUTE_IN_SECONDS );
		wp_safe_redirect( admin_url( 'options-general.php?page=' . self::PAGE ) );
		exit;
	}

	/**
	 * Check the saved connection and say plainly what is wrong.
	 *
	 * @return array{ok: bool, code: string, message: string}
	 */
	public static function test_connection() {
		$client = Bridge_Client::from_settings();
		$ready  = $client->readyz();
		if ( is_wp_error( $ready ) ) {
			return array(
				'ok'      => false,
				'code'    => $ready->get_error_code(),
				'message' => $ready->get_error_message(),
			);
		}
		$text = $client->request( 'GET', '/api/v1/consent-text' );
		if ( is_wp_error( $text ) ) {
			return array(
				'ok'      => false,
				'code'    => $text->get_error_code(),
				'message' => $text->get_error_message(),
			);
		}
		// Which token: the read-only one serves the front end (verify, gate, Users column) only.
		$admin = $client->request( 'GET', '/api/v1/stats' );
		if ( is_wp_error( $admin ) && 'kycb_read_only_token' === $admin->get_error_code() ) {
			return array(
				'ok'      => true,
				'code'    => 'ok_read_only',
				'message' => __( 'Connected with the read-only token (BRIDGE_READ_TOKEN): verification, gated content and the Users column work; the KYC Verifications page and its actions need BRIDGE_ADMIN_TOKEN.', 'kyc-bridge' ),
			);
		}
		return array(
			'ok'      => true,
			'code'    => 'ok',
			'message' => __( 'Connected: the bridge is ready and accepted the token.', 'kyc-bridge' ),
		);
	}
}
